//! Methods an authenticating interceptor lets through without credentials.

use std::collections::BTreeSet;

/// The service of `grpc.health.v1`: exempt by default, so probes need no credentials.
const HEALTH: &str = "grpc.health.v1.Health";

/// Exempt services (by fully qualified name) and methods (by path).
#[derive(Debug, Clone)]
pub(crate) struct Exemptions {
    services: BTreeSet<String>,
    methods: BTreeSet<String>,
}

impl Default for Exemptions {
    fn default() -> Self {
        Self {
            services: BTreeSet::from([HEALTH.to_owned()]),
            methods: BTreeSet::new(),
        }
    }
}

impl Exemptions {
    pub(crate) fn covers(&self, method: &crate::MethodDescriptor) -> bool {
        self.services.contains(method.service()) || self.methods.contains(method.path())
    }

    pub(crate) fn service(&mut self, name: String) {
        self.services
            .insert(name.trim_start_matches('/').to_owned());
    }

    pub(crate) fn method(&mut self, path: String) {
        self.methods.insert(path);
    }

    pub(crate) fn require_for_health(&mut self) {
        self.services.remove(HEALTH);
    }
}

/// The builder methods every authenticating interceptor offers for its [`Exemptions`] (in a
/// field named `exempt`).
macro_rules! exemption_methods {
    () => {
        /// Lets calls of the method at `path` (`/package.Service/Method`) through without
        /// credentials.
        #[must_use]
        pub fn exempt_method(mut self, path: impl Into<String>) -> Self {
            self.exempt.method(path.into());
            self
        }

        /// Lets calls of every method of `service` (`package.Service`) through without
        /// credentials.
        #[must_use]
        pub fn exempt_service(mut self, service: impl Into<String>) -> Self {
            self.exempt.service(service.into());
            self
        }

        /// Checks `grpc.health.v1` calls too (by default they need no credentials, so that
        /// probes work).
        #[must_use]
        pub fn require_for_health(mut self) -> Self {
            self.exempt.require_for_health();
            self
        }
    };
}
pub(crate) use exemption_methods;

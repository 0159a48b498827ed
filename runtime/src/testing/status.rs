//! Asserting that a call failed the way it should.

use std::fmt::Debug;

use tonic::{Code, Status};

/// `expect_err` for calls, checking the code too.
pub trait ExpectStatus {
    /// The error status, after checking its code.
    ///
    /// # Panics
    /// If the call succeeded, or failed with another code; the message shows what came back.
    fn expect_status(self, code: Code) -> Status;
}

impl<T: Debug> ExpectStatus for Result<T, Status> {
    #[track_caller]
    fn expect_status(self, code: Code) -> Status {
        match self {
            Ok(value) => panic!("expected a {code:?} status, but the call succeeded: {value:?}"),
            Err(status) if status.code() == code => status,
            Err(status) => panic!(
                "expected a {code:?} status, got {:?}: {:?}",
                status.code(),
                status.message()
            ),
        }
    }
}

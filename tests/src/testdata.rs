//! Which testdata files make up each generated case, shared by `build.rs`, the golden tests
//! and the CLI/protoc tests so that every front end sees the same inputs.

/// Every well-formed `.proto` in `testdata/`, relative to it.
pub const GOOD: [&str; 9] = [
    "echo/v1/echo.proto",
    "files/v1/files.proto",
    "greeter/v1/greeter.proto",
    "hostile/nopackage.proto",
    "hostile/v1/hostile.proto",
    "shop/catalog/v1/catalog.proto",
    "shop/common/v1/money.proto",
    "shop/orders/v1/order_events.proto",
    "shop/orders/v1/orders.proto",
];

/// Inputs of the "options" case.
pub const OPTIONS_CASE: [&str; 3] = [
    "shop/orders/v1/orders.proto",
    "echo/v1/echo.proto",
    "greeter/v1/greeter.proto",
];

/// The options of the "options" case, as protoc parameters.
pub const OPTIONS_PARAMETER: &str = "no_server,openapi,bytes=.,btree_map=.shop.catalog,type_names,mockall=always,\
    message_attribute=.shop.orders.v1.Order=#[doc(alias = \"Purchase\")],\
    extern_path=.shop.common.v1=crate::default::shop::common::v1,\
    field_attribute=.echo.v1.EchoRequest.message=#[doc(alias = \"text\")]";

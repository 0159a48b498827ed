//! `rzero::gateway`'s public pieces composed the way the HTTP layer uses them: find the route,
//! then bind the path variables and the query string into the request message.
#![cfg(feature = "gateway")]

use rzero::gateway::prost_reflect::{DescriptorPool, DynamicMessage, Value};
use rzero::gateway::{Binding, Body, PathTemplate, RouteMatch, Router};

/// What a route table entry holds: the RPC to call and how to fill its request.
struct Route {
    rpc: &'static str,
    binding: Binding,
}

fn request_pool() -> DescriptorPool {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/gateway/testdata");
    let mut compiler = protox::Compiler::new([dir]).expect("include dir");
    compiler
        .include_imports(true)
        .open_file("binding.proto")
        .expect("test proto compiles");
    compiler.descriptor_pool()
}

fn router() -> Router<Route> {
    let rules = [
        ("GET", "/v1/{name=shelves/*}/items", Body::None, "List"),
        ("POST", "/v1/{name=shelves/*}:search", Body::All, "Search"),
        (
            "PATCH",
            "/v1/{item.id}",
            Body::Field("item".into()),
            "Update",
        ),
        (
            "GET",
            "/v1/{name=shelves/*}/items/{page_size}",
            Body::None,
            "Page",
        ),
    ];
    let mut router = Router::new();
    for (method, template, body, rpc) in rules {
        let binding = Binding::new(&PathTemplate::parse(template).unwrap(), body);
        router
            .insert(method, template, Route { rpc, binding })
            .unwrap();
    }
    router
}

/// Routes `method` + `target` (path and query) and binds a `gw.test.Request`, answering
/// failures the way the HTTP layer will.
fn call(
    router: &Router<Route>,
    method: &str,
    target: &str,
) -> Result<(&'static str, DynamicMessage), String> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let found = match router.find(method, path) {
        RouteMatch::Found(found) => found,
        RouteMatch::MethodNotAllowed(allowed) => {
            return Err(format!("405 Allow: {}", allowed.join(", ")));
        }
        RouteMatch::NotFound => return Err("404".into()),
    };
    let descriptor = request_pool()
        .get_message_by_name("gw.test.Request")
        .unwrap();
    let mut request = DynamicMessage::new(descriptor);
    let binding = &found.value.binding;
    let bound = binding
        .bind_path(&mut request, &found.params)
        .and_then(|()| binding.bind_query(&mut request, query));
    match bound {
        Ok(()) => Ok((found.value.rpc, request)),
        Err(error) => Err(format!("400 {}", rzero::Status::from(error).message())),
    }
}

fn field(message: &DynamicMessage, name: &str) -> Value {
    message.get_field_by_name(name).unwrap().into_owned()
}

fn string(text: &str) -> Value {
    Value::String(text.to_owned())
}

#[test]
fn routes_and_binds() {
    let router = router();

    let (rpc, request) = call(
        &router,
        "GET",
        "/v1/shelves/s%201/items?pageSize=20&tags=a&tags=b",
    )
    .unwrap();
    assert_eq!(rpc, "List");
    // A multi-segment value: unreserved escapes decoded, as the spec says.
    assert_eq!(field(&request, "name"), string("shelves/s 1"));
    assert_eq!(field(&request, "page_size"), Value::I32(20));
    assert_eq!(
        field(&request, "tags"),
        Value::List(vec![string("a"), string("b")])
    );

    // A typed path variable; the query cannot override it.
    let (rpc, request) = call(&router, "GET", "/v1/shelves/s1/items/7?page_size=9").unwrap();
    assert_eq!(rpc, "Page");
    assert_eq!(field(&request, "page_size"), Value::I32(7));

    // body "*": query parameters are ignored.
    let (rpc, request) = call(&router, "POST", "/v1/shelves/s1:search?page_size=3").unwrap();
    assert_eq!(rpc, "Search");
    assert_eq!(field(&request, "page_size"), Value::I32(0));

    // A colon inside a single-segment value binds a nested field; the body field is not
    // settable from the query, other fields are.
    let (rpc, request) = call(&router, "PATCH", "/v1/a:b?item.id=other&name=n").unwrap();
    assert_eq!(rpc, "Update");
    let Value::Message(item) = field(&request, "item") else {
        panic!("item is a message")
    };
    assert_eq!(field(&item, "id"), string("a:b"));
    assert_eq!(field(&request, "name"), string("n"));
}

#[test]
fn maps_failures_to_http_answers() {
    let router = router();
    assert_eq!(
        call(&router, "DELETE", "/v1/shelves/s1/items").unwrap_err(),
        "405 Allow: GET, HEAD"
    );
    assert_eq!(call(&router, "GET", "/v2/shelves").unwrap_err(), "404");
    assert_eq!(
        call(&router, "GET", "/v1/shelves/s1/items/x").unwrap_err(),
        "400 invalid value \"x\" for \"page_size\": expected an int32"
    );
    assert_eq!(
        call(
            &router,
            "GET",
            "/v1/shelves/s1/items?page_size=1&page_size=2"
        )
        .unwrap_err(),
        "400 too many values for field \"page_size\""
    );
}

//! A `google.protobuf.Any` that is set but empty (no `type_url`, no `value`), written as `{}`
//! and read from `{}`, at every depth, as protojson does.
//!
//! What protojson does (protobuf-go `encoding/protojson/well_known_types.go`, read at
//! 09d1616):
//!
//! - `marshalAny`: an `Any` whose `type_url` is not set (proto3: empty) and whose `value` is
//!   not set is written as an empty object ("If message is empty, marshal out empty JSON
//!   object"), with or without `EmitUnpopulated` (it writes no field at all); a `value`
//!   without a `type_url` is the error `google.protobuf.Any: type_url is not set`.
//! - `unmarshalAny` (with `findTypeURL`): an empty object "translates to an empty Any message"
//!   (`errEmptyObject`: the field is set, the `Any` empty). An object with keys but no `@type`
//!   is `missing "@type" field` (`errMissingType`), unless `DiscardUnknown` is on: then "Treat
//!   all fields as unknowns, similar to an empty object", an empty `Any` too. grpc-gateway's
//!   default unmarshaler has `DiscardUnknown` (`runtime/marshaler_registry.go` at 0cc646c),
//!   as rzero's default
//!   [`reject_unknown_fields(false)`](super::JsonOptions::reject_unknown_fields) is; with
//!   `reject_unknown_fields(true)` such an object is refused. `"@type": ""` is always an
//!   error (`@type field contains empty value`).
//!
//! Why this exists: `prost-reflect` (0.16) does neither. Its `serialize_any` resolves the type
//! URL before it calls the serializer at all, and fails on `""` ("unsupported type url ''"),
//! so one empty `Any` anywhere in a reply (a Rust server returning
//! `Some(prost_types::Any::default())`) failed the whole call. Its `GoogleProtobufAnyVisitor`
//! wants `@type` first ("expected '@type' field") and can only return an `Any` whose type
//! resolves, so `{}` was a 400. No serializer or deserializer adapter can reach in: the writer
//! fails before any call to the serializer, and the reader's result cannot be an empty `Any`.
//!
//! How: through a *stand-in*, an `Any` whose type URL is in the domain [`domain`]
//! (`rzero-empty-any-<random>.invalid`, random per process, so neither a client nor a server
//! can send one by chance or on purpose), which `prost-reflect` does handle:
//!
//! - Writing: [`Plan::stand_ins`] walks the message (fields, list elements, map values,
//!   nested messages, and the payload of an `Any` whose type can hold one) and returns a copy
//!   in which each empty `Any` is the stand-in `<domain>/google.protobuf.Any` with no value
//!   (the pool of any message holding an `Any` has that type). `prost-reflect` writes it as
//!   the map `{"@type": <stand-in>, "value": <empty Any>}`; [`EmptyAnys`], wrapped around the
//!   serializer, drops every entry of a map whose first entry is that `@type` (the inner empty
//!   `Any` is never serialized), which leaves `{}`. A `value` without a `type_url` is
//!   refused here with protojson's message instead of `prost-reflect`'s.
//! - Reading: a read that fails is retried, if the type can hold an `Any`: the body is parsed
//!   as a `serde_json::Value`, [`ReadPlan::rewrite`] replaces each `{}` in an `Any`'s place (or
//!   object without `@type`, as above) by `{"@type": "<domain>/<T>"}`, `T` a plain message type
//!   of the pool (whose `{}` reads as an empty message, encoded as no bytes), the value is read
//!   again, and [`ReadPlan::restore`] empties every stand-in `Any` of the result. When nothing
//!   was rewritten, the first error is returned as it was.
//!
//! Cost: a type from which no `Any` can be reached has no plan (greeter's messages, most
//! replies), and is written and read exactly as before. With a plan, writing costs a walk of
//! the fields that can lead to an `Any` (plus, for an `Any` whose payload type can hold one,
//! decoding the payload); only a reply that does hold an empty `Any` is copied and written
//! through [`EmptyAnys`]. Reading costs nothing until a read fails. The retried read goes
//! through a parsed `serde_json::Value`, as a `body: "field"` read always does (its errors name
//! no line and column).
//!
//! Not covered: extensions (`prost-reflect` writes them; the walk does not follow them).

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::LazyLock;

use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage as _,
    Value,
};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::nulls::{Class, class, probe_str};

/// `google.protobuf.Any`'s field numbers.
const TYPE_URL: u32 = 1;
const VALUE: u32 = 2;

/// The domain of stand-in type URLs: random per process, and `.invalid` (RFC 2606), so that
/// no real type URL is one.
fn domain() -> &'static str {
    static DOMAIN: LazyLock<String> = LazyLock::new(|| {
        let nonce = RandomState::new().hash_one("google.protobuf.Any");
        format!("rzero-empty-any-{nonce:016x}.invalid")
    });
    &DOMAIN
}

/// Whether `url` is a stand-in's.
fn is_stand_in(url: &str) -> bool {
    url.strip_prefix(domain())
        .is_some_and(|name| name.starts_with('/'))
}

/// Where the `Any`s reachable from one message type are, computed once per type (per route,
/// and per `Any` payload type met). `None` from [`Plan::new`] when there is none.
pub(crate) struct Plan {
    root: Elem,
    /// The plain message types that lead to an `Any`, by [`Elem::Message`] index; each lists
    /// only its fields that do.
    types: Box<[Vec<FieldPlan>]>,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("root", &self.root)
            .field("types", &self.types.len())
            .finish()
    }
}

struct FieldPlan {
    field: FieldDescriptor,
    node: Node,
}

/// A message on the way to an `Any`.
#[derive(Clone, Copy, Debug)]
enum Elem {
    /// A plain message type, by index in [`Plan::types`].
    Message(u32),
    Any,
}

/// How a field holds its [`Elem`]s.
#[derive(Clone, Copy, Debug)]
enum Node {
    One(Elem),
    List(Elem),
    Map(Elem),
}

/// What an `Any` becomes: `Ok(None)` to keep it (and look into its payload).
type Leaf<'a> = dyn Fn(&DynamicMessage) -> Result<Option<DynamicMessage>, String> + 'a;

impl Plan {
    /// The plan for `descriptor` messages, or `None` if no `Any` can be reached from one.
    pub(crate) fn new(descriptor: &MessageDescriptor) -> Option<Plan> {
        match class(descriptor) {
            // Their JSON has no room for an `Any` (`Struct`, `Value` and `ListValue` hold
            // only each other).
            Class::WellKnown => return None,
            Class::Any => {
                return Some(Plan {
                    root: Elem::Any,
                    types: Box::default(),
                });
            }
            Class::Plain => {}
        }
        let mut index: HashMap<String, u32> = HashMap::new();
        index.insert(descriptor.full_name().to_owned(), 0);
        let mut found = vec![descriptor.clone()];
        // Breadth first over the plain types reachable from the root, keeping the fields
        // that hold messages that are not well-known types.
        let mut types: Vec<Vec<FieldPlan>> = Vec::new();
        while types.len() < found.len() {
            let message = found[types.len()].clone();
            let mut fields = Vec::new();
            for field in message.fields() {
                let kind = match field.kind() {
                    Kind::Message(entry) if field.is_map() => entry.map_entry_value_field().kind(),
                    kind => kind,
                };
                let Kind::Message(m) = kind else { continue };
                let elem = match class(&m) {
                    Class::WellKnown => continue,
                    Class::Any => Elem::Any,
                    Class::Plain => {
                        let next = found.len() as u32;
                        let i = *index.entry(m.full_name().to_owned()).or_insert(next);
                        if i == next {
                            found.push(m);
                        }
                        Elem::Message(i)
                    }
                };
                let node = if field.is_map() {
                    Node::Map(elem)
                } else if field.is_list() {
                    Node::List(elem)
                } else {
                    Node::One(elem)
                };
                fields.push(FieldPlan { field, node });
            }
            types.push(fields);
        }

        // A type leads to an `Any` if a field holds one or a type that does; found by
        // iterating to a fixed point (types may recurse).
        let mut leads = vec![false; types.len()];
        let elem_leads = |elem: Elem, leads: &[bool]| match elem {
            Elem::Any => true,
            Elem::Message(i) => leads[i as usize],
        };
        let node_leads = |node: Node, leads: &[bool]| match node {
            Node::One(e) | Node::List(e) | Node::Map(e) => elem_leads(e, leads),
        };
        loop {
            let mut changed = false;
            for (i, fields) in types.iter().enumerate() {
                if !leads[i] && fields.iter().any(|f| node_leads(f.node, &leads)) {
                    leads[i] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        if !leads[0] {
            return None;
        }
        for (i, fields) in types.iter_mut().enumerate() {
            if leads[i] {
                fields.retain(|f| node_leads(f.node, &leads));
            } else {
                *fields = Vec::new();
            }
        }
        Some(Plan {
            root: Elem::Message(0),
            types: types.into(),
        })
    }

    /// For writing: `message` with every empty `Any` replaced by the stand-in that
    /// [`EmptyAnys`] writes as `{}`, or `None` if it holds none (then it is written as it
    /// is). An `Any` with a `value` but no `type_url` is an error, as in protojson.
    pub(crate) fn stand_ins(
        &self,
        message: &DynamicMessage,
    ) -> Result<Option<DynamicMessage>, String> {
        self.map_elem(self.root, message, &|any| {
            let (url, value) = parts(any);
            match (url.is_empty(), value.is_empty()) {
                (false, _) => Ok(None),
                (true, true) => {
                    let mut stand_in = DynamicMessage::new(any.descriptor());
                    let url = format!("{}/{}", domain(), any.descriptor().full_name());
                    stand_in.set_field_by_number(TYPE_URL, Value::String(url));
                    Ok(Some(stand_in))
                }
                (true, false) => Err(format!(
                    "google.protobuf.Any: type_url is not set (with a value of {} bytes)",
                    value.len()
                )),
            }
        })
    }

    /// `message` (of `elem`) with `leaf` applied to each `Any` in it, or `None` if nothing
    /// changed. Copies only what changes (and the messages on the way to it).
    fn map_elem(
        &self,
        elem: Elem,
        message: &DynamicMessage,
        leaf: &Leaf<'_>,
    ) -> Result<Option<DynamicMessage>, String> {
        match elem {
            Elem::Any => map_any(message, leaf),
            Elem::Message(ty) => {
                let mut copy: Option<DynamicMessage> = None;
                for f in &self.types[ty as usize] {
                    if !message.has_field(&f.field) {
                        continue;
                    }
                    let value = message.get_field(&f.field);
                    let new = match (f.node, value.as_ref()) {
                        (Node::One(e), Value::Message(m)) => {
                            self.map_elem(e, m, leaf)?.map(Value::Message)
                        }
                        (Node::List(e), Value::List(items)) => {
                            let mut new: Option<Vec<Value>> = None;
                            for (i, item) in items.iter().enumerate() {
                                if let Value::Message(m) = item
                                    && let Some(m) = self.map_elem(e, m, leaf)?
                                {
                                    new.get_or_insert_with(|| items.clone())[i] = Value::Message(m);
                                }
                            }
                            new.map(Value::List)
                        }
                        (Node::Map(e), Value::Map(entries)) => {
                            let mut new = None;
                            for (key, value) in entries {
                                if let Value::Message(m) = value
                                    && let Some(m) = self.map_elem(e, m, leaf)?
                                {
                                    new.get_or_insert_with(|| entries.clone())
                                        .insert(key.clone(), Value::Message(m));
                                }
                            }
                            new.map(Value::Map)
                        }
                        _ => None,
                    };
                    if let Some(new) = new {
                        copy.get_or_insert_with(|| message.clone())
                            .set_field(&f.field, new);
                    }
                }
                Ok(copy)
            }
        }
    }
}

/// An `Any`'s type URL and value.
fn parts(any: &DynamicMessage) -> (String, prost::bytes::Bytes) {
    let url = any
        .get_field_by_number(TYPE_URL)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let value = any
        .get_field_by_number(VALUE)
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default();
    (url, value)
}

/// `leaf` of `any`, or else `any` with `leaf` applied inside its payload when the payload's
/// type can hold an `Any` (decoded, changed, encoded again). A payload whose type is unknown
/// or that does not decode is left alone, for `prost-reflect` to report.
fn map_any(any: &DynamicMessage, leaf: &Leaf<'_>) -> Result<Option<DynamicMessage>, String> {
    if let Some(new) = leaf(any)? {
        return Ok(Some(new));
    }
    let (url, value) = parts(any);
    let name = url.rsplit_once('/').map_or(url.as_str(), |(_, name)| name);
    let Some(payload_type) = any.descriptor().parent_pool().get_message_by_name(name) else {
        return Ok(None);
    };
    let Some(plan) = Plan::new(&payload_type) else {
        return Ok(None);
    };
    let Ok(payload) = DynamicMessage::decode(payload_type, value) else {
        return Ok(None);
    };
    let Some(payload) = plan.map_elem(plan.root, &payload, leaf)? else {
        return Ok(None);
    };
    let mut any = any.clone();
    any.set_field_by_number(VALUE, Value::Bytes(payload.encode_to_vec().into()));
    Ok(Some(any))
}

/// How to read `{}` as an `Any` into messages of one type; `None` from [`ReadPlan::new`] when
/// none can hold an `Any`.
pub(crate) struct ReadPlan {
    plan: Plan,
    /// The stand-in's type URL: `<domain>/<a plain message type of the pool>`.
    url: Box<str>,
    pool: DescriptorPool,
}

impl fmt::Debug for ReadPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadPlan")
            .field("plan", &self.plan)
            .field("url", &self.url)
            .finish()
    }
}

impl ReadPlan {
    /// The plan for reading `descriptor` messages. `None` also when the pool has no plain
    /// message type to stand in (it then holds only well-known types; `{}` stays refused).
    pub(crate) fn new(descriptor: &MessageDescriptor) -> Option<ReadPlan> {
        let plan = Plan::new(descriptor)?;
        let plain = |m: &MessageDescriptor| matches!(class(m), Class::Plain) && !m.is_map_entry();
        let pool = descriptor.parent_pool().clone();
        let filler = if plain(descriptor) {
            descriptor.clone()
        } else {
            pool.all_messages().find(plain)?
        };
        Some(ReadPlan {
            plan,
            url: format!("{}/{}", domain(), filler.full_name()).into(),
            pool,
        })
    }

    /// Replaces each object in an `Any`'s place in `json` (a whole message) that protojson
    /// reads as an empty `Any` with the stand-in `{"@type": <url>}`: `{}`, and with
    /// `discard_unknown` any object without `@type`. Returns whether it replaced any.
    pub(crate) fn rewrite(&self, json: &mut serde_json::Value, discard_unknown: bool) -> bool {
        let cx = Rewrite {
            read: self,
            discard_unknown,
        };
        cx.elem(&self.plan, self.plan.root, json)
    }

    /// `message`, read from what [`rewrite`](Self::rewrite) wrote, with every stand-in `Any`
    /// made empty again.
    pub(crate) fn restore(&self, message: DynamicMessage) -> DynamicMessage {
        let empty = |any: &DynamicMessage| {
            let (url, _) = parts(any);
            Ok(is_stand_in(&url).then(|| DynamicMessage::new(any.descriptor())))
        };
        match self.plan.map_elem(self.plan.root, &message, &empty) {
            Ok(Some(restored)) => restored,
            _ => message,
        }
    }
}

/// One [`ReadPlan::rewrite`].
struct Rewrite<'a> {
    read: &'a ReadPlan,
    discard_unknown: bool,
}

impl Rewrite<'_> {
    fn elem(&self, plan: &Plan, elem: Elem, json: &mut serde_json::Value) -> bool {
        let serde_json::Value::Object(object) = json else {
            return false;
        };
        let ty = match elem {
            Elem::Message(ty) => ty,
            Elem::Any => return self.any(object),
        };
        let mut changed = false;
        for f in &plan.types[ty as usize] {
            // Input accepts both names.
            let (json_name, name) = (f.field.json_name(), f.field.name());
            if let Some(value) = object.get_mut(json_name) {
                changed |= self.node(plan, f.node, value);
            }
            if name != json_name
                && let Some(value) = object.get_mut(name)
            {
                changed |= self.node(plan, f.node, value);
            }
        }
        changed
    }

    fn node(&self, plan: &Plan, node: Node, json: &mut serde_json::Value) -> bool {
        match (node, json) {
            (Node::One(e), json) => self.elem(plan, e, json),
            (Node::List(e), serde_json::Value::Array(items)) => items
                .iter_mut()
                .fold(false, |changed, item| self.elem(plan, e, item) | changed),
            (Node::Map(e), serde_json::Value::Object(entries)) => entries
                .values_mut()
                .fold(false, |changed, value| self.elem(plan, e, value) | changed),
            _ => false,
        }
    }

    /// An `Any`'s object: the stand-in if protojson reads it as empty, else its payload's
    /// fields (or, for a payload that is an `Any`, its `value`) rewritten in turn.
    fn any(&self, object: &mut serde_json::Map<String, serde_json::Value>) -> bool {
        let url = match object.get("@type") {
            None if object.is_empty() || self.discard_unknown => {
                object.clear();
                object.insert("@type".into(), self.read.url.to_string().into());
                return true;
            }
            Some(serde_json::Value::String(url)) => url,
            _ => return false,
        };
        let name = url.rsplit_once('/').map_or(url.as_str(), |(_, name)| name);
        let Some(plan) = self
            .read
            .pool
            .get_message_by_name(name)
            .and_then(|payload| Plan::new(&payload))
        else {
            return false;
        };
        match plan.root {
            Elem::Any => object
                .get_mut("value")
                .is_some_and(|value| self.elem(&plan, Elem::Any, value)),
            Elem::Message(_) => {
                let mut json = serde_json::Value::Object(std::mem::take(object));
                let changed = self.elem(&plan, plan.root, &mut json);
                if let serde_json::Value::Object(taken) = json {
                    *object = taken;
                }
                changed
            }
        }
    }
}

/// A serializer that writes the stand-in `Any`s of [`Plan::stand_ins`] as `{}`, at every
/// depth; see the module docs. Used only for messages that hold one.
pub(crate) struct EmptyAnys<S>(pub(crate) S);

/// A value serialized through [`EmptyAnys`].
struct Wrap<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Wrap<'_, T> {
    #[inline]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(EmptyAnys(serializer))
    }
}

impl<S: Serializer> Serializer for EmptyAnys<S> {
    type SerializeSeq = EmptyAnys<S::SerializeSeq>;
    type SerializeMap = Entries<S::SerializeMap>;

    forward_all_but_seq_and_map!(0);

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(EmptyAnys)
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Ok(Entries {
            inner: self.0.serialize_map(len)?,
            state: State::First,
        })
    }
}

impl<S: SerializeSeq> SerializeSeq for EmptyAnys<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_element(&Wrap(value))
    }

    #[inline]
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

/// Where a map being written through [`EmptyAnys`] is.
enum State {
    /// Before its first entry.
    First,
    /// Its first key was `@type` (through `serialize_key`), held back until the value tells
    /// whether it is a stand-in's.
    TypeKey,
    /// An ordinary map: entries are passed on.
    Open,
    /// A stand-in `Any`: entries are dropped.
    StandIn,
}

/// A map written through [`EmptyAnys`].
pub(crate) struct Entries<M> {
    inner: M,
    state: State,
}

fn is_type_key<K: Serialize + ?Sized>(key: &K) -> bool {
    probe_str(key, |key| key == "@type") == Some(true)
}

fn is_stand_in_url<V: Serialize + ?Sized>(value: &V) -> bool {
    probe_str(value, is_stand_in) == Some(true)
}

impl<M: SerializeMap> SerializeMap for Entries<M> {
    type Ok = M::Ok;
    type Error = M::Error;

    fn serialize_key<K: Serialize + ?Sized>(&mut self, key: &K) -> Result<(), M::Error> {
        match self.state {
            State::StandIn => Ok(()),
            State::First if is_type_key(key) => {
                self.state = State::TypeKey;
                Ok(())
            }
            State::TypeKey => {
                self.state = State::Open;
                self.inner.serialize_key("@type")?;
                self.inner.serialize_key(key)
            }
            State::First | State::Open => {
                self.state = State::Open;
                self.inner.serialize_key(key)
            }
        }
    }

    fn serialize_value<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), M::Error> {
        match self.state {
            State::StandIn => Ok(()),
            State::TypeKey if is_stand_in_url(value) => {
                self.state = State::StandIn;
                Ok(())
            }
            State::TypeKey => {
                self.state = State::Open;
                self.inner.serialize_key("@type")?;
                self.inner.serialize_value(&Wrap(value))
            }
            State::First | State::Open => self.inner.serialize_value(&Wrap(value)),
        }
    }

    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), M::Error> {
        match self.state {
            State::StandIn => Ok(()),
            State::First if is_type_key(key) && is_stand_in_url(value) => {
                self.state = State::StandIn;
                Ok(())
            }
            State::TypeKey => {
                self.serialize_key(key)?;
                self.serialize_value(value)
            }
            State::First | State::Open => {
                self.state = State::Open;
                self.inner.serialize_entry(key, &Wrap(value))
            }
        }
    }

    fn end(self) -> Result<M::Ok, M::Error> {
        self.inner.end()
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, ReflectMessage as _, Value};
    use serde_json::json;

    use super::super::JsonOptions;

    const URL: &str = "type.googleapis.com/";

    fn pool() -> DescriptorPool {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/gateway/testdata");
        let mut compiler = protox::Compiler::new([dir]).expect("include dir");
        compiler.include_imports(true);
        compiler
            .open_file("empty_any.proto")
            .expect("test proto compiles");
        compiler.descriptor_pool()
    }

    fn new(pool: &DescriptorPool, name: &str) -> DynamicMessage {
        DynamicMessage::new(pool.get_message_by_name(name).unwrap())
    }

    /// An `Any` holding `payload`, or an empty one.
    fn any(pool: &DescriptorPool, payload: Option<&DynamicMessage>) -> DynamicMessage {
        let mut any = new(pool, "google.protobuf.Any");
        if let Some(payload) = payload {
            let url = format!("{URL}{}", payload.descriptor().full_name());
            any.set_field_by_name("type_url", Value::String(url));
            any.set_field_by_name("value", Value::Bytes(payload.encode_to_vec().into()));
        }
        any
    }

    fn empty(pool: &DescriptorPool) -> Value {
        Value::Message(any(pool, None))
    }

    fn holder(pool: &DescriptorPool, fields: Vec<(&str, Value)>) -> DynamicMessage {
        let mut holder = new(pool, "gw.empty_any.Holder");
        for (name, value) in fields {
            holder.set_field_by_name(name, value);
        }
        holder
    }

    /// A `Holder` with an empty `Any` in every place one can be: a field, a oneof member,
    /// list elements, a map value, nested messages in a field, a list and a map, and `Any`
    /// payloads (an `Any` of an empty `Any`, an `Any` of a `Holder` holding one).
    fn everywhere(pool: &DescriptorPool) -> DynamicMessage {
        let one = |pool| Value::Message(holder(pool, vec![("any", empty(pool))]));
        let named = holder(pool, vec![("name", Value::String("x".into()))]);
        let Value::Message(holding) = one(pool) else {
            unreachable!()
        };
        let anys = vec![
            empty(pool),
            Value::Message(any(pool, Some(&named))),
            Value::Message(any(pool, Some(&any(pool, None)))),
            Value::Message(any(pool, Some(&holding))),
        ];
        let by_id = holder(pool, vec![("anys", Value::List(vec![empty(pool)]))]);
        holder(
            pool,
            vec![
                ("any", empty(pool)),
                ("anys", Value::List(anys)),
                (
                    "by_name",
                    Value::Map([(MapKey::String("k".into()), empty(pool))].into()),
                ),
                ("nested", one(pool)),
                ("children", Value::List(vec![one(pool)])),
                (
                    "by_id",
                    Value::Map([(MapKey::I32(1), Value::Message(by_id))].into()),
                ),
                ("picked", empty(pool)),
                ("other_any", empty(pool)),
            ],
        )
    }

    /// `Holder` as written with unpopulated fields: `fields` over the defaults.
    fn full(fields: serde_json::Value) -> serde_json::Value {
        let mut holder = json!({
            "name": "", "any": null, "anys": [], "byName": {}, "nested": null,
            "children": [], "byId": {}, "custom": null,
        });
        for (key, value) in fields.as_object().unwrap() {
            holder[key] = value.clone();
        }
        holder
    }

    fn typed(name: &str, mut fields: serde_json::Value) -> serde_json::Value {
        fields["@type"] = json!(format!("{URL}{name}"));
        fields
    }

    /// What [`everywhere`] writes, with or without unpopulated fields (JSON names).
    fn everywhere_json(emit: bool) -> serde_json::Value {
        let fill = |fields| if emit { full(fields) } else { fields };
        fill(json!({
            "any": {},
            "anys": [
                {},
                typed("gw.empty_any.Holder", fill(json!({"name": "x"}))),
                typed("google.protobuf.Any", json!({"value": {}})),
                typed("gw.empty_any.Holder", fill(json!({"any": {}}))),
            ],
            "byName": {"k": {}},
            "nested": fill(json!({"any": {}})),
            "children": [fill(json!({"any": {}}))],
            "byId": {"1": fill(json!({"anys": [{}]}))},
            "picked": {},
            "custom": {},
        }))
    }

    /// `json` with the proto field names where they differ from the JSON names.
    fn proto_names(json: serde_json::Value) -> serde_json::Value {
        match json {
            serde_json::Value::Object(object) => object
                .into_iter()
                .map(|(key, value)| {
                    let key = match key.as_str() {
                        "byName" => "by_name".to_owned(),
                        "byId" => "by_id".to_owned(),
                        "custom" => "other_any".to_owned(),
                        _ => key,
                    };
                    (key, proto_names(value))
                })
                .collect(),
            serde_json::Value::Array(items) => items.into_iter().map(proto_names).collect(),
            json => json,
        }
    }

    const OPTIONS: [(bool, bool); 4] = [(true, false), (true, true), (false, false), (false, true)];

    fn options(emit: bool, proto: bool) -> JsonOptions {
        JsonOptions::new()
            .emit_unpopulated(emit)
            .proto_field_names(proto)
    }

    fn expected(emit: bool, proto: bool) -> serde_json::Value {
        let json = everywhere_json(emit);
        if proto { proto_names(json) } else { json }
    }

    fn parse(bytes: &[u8]) -> serde_json::Value {
        serde_json::from_slice(bytes).unwrap()
    }

    /// Compares on the wire (`assert_eq!` would print a recursive type's descriptor forever).
    fn assert_same(a: &DynamicMessage, b: &DynamicMessage, context: &str) {
        assert!(
            a.encode_to_vec() == b.encode_to_vec(),
            "{context}: {}",
            String::from_utf8_lossy(&JsonOptions::new().write_json(a).unwrap())
        );
    }

    #[test]
    fn empty_anys_are_written_as_empty_objects_at_every_depth() {
        let pool = pool();
        let message = everywhere(&pool);
        for (emit, proto) in OPTIONS {
            let json = parse(&options(emit, proto).write_json(&message).unwrap());
            assert_eq!(
                json,
                expected(emit, proto),
                "emit {emit}, proto names {proto}"
            );
        }
        // Still `null` when unset, with unpopulated fields; a set empty one is `{}`.
        let unset = holder(&pool, vec![]);
        let json = parse(&JsonOptions::new().write_json(&unset).unwrap());
        assert_eq!(json, full(json!({})));
    }

    /// An empty `Any` as the whole message, and in a type that holds one only through a
    /// list of messages.
    #[test]
    fn empty_anys_at_the_top_and_behind_a_list() {
        let pool = pool();
        for (emit, proto) in OPTIONS {
            let json = options(emit, proto).write_json(&any(&pool, None)).unwrap();
            assert_eq!(json, b"{}");
            let mut outer = new(&pool, "gw.empty_any.Outer");
            let holders = vec![Value::Message(holder(&pool, vec![("any", empty(&pool))]))];
            outer.set_field_by_name("holders", Value::List(holders));
            let json = parse(&options(emit, proto).write_json(&outer).unwrap());
            let holder = if emit {
                full(json!({"any": {}}))
            } else {
                json!({"any": {}})
            };
            let holder = if proto { proto_names(holder) } else { holder };
            assert_eq!(json, json!({"holders": [holder]}), "emit {emit}");
        }
    }

    /// `response_body`: the field alone, set to an empty `Any` or holding one.
    #[test]
    fn response_body_fields_write_empty_anys_too() {
        let pool = pool();
        let message = everywhere(&pool);
        for (emit, proto) in OPTIONS {
            let expected = expected(emit, proto);
            let field_json = |name: &str| {
                let field = message.descriptor().get_field_by_name(name).unwrap();
                let bytes = options(emit, proto)
                    .write_field_json(message.clone(), &field)
                    .unwrap();
                parse(&bytes)
            };
            for (field, key) in [
                ("any", "any"),
                ("picked", "picked"),
                ("other_any", if proto { "other_any" } else { "custom" }),
                ("anys", "anys"),
                ("nested", "nested"),
                ("children", "children"),
                ("by_id", if proto { "by_id" } else { "byId" }),
            ] {
                assert_eq!(field_json(field), expected[key], "{field}, emit {emit}");
            }
        }
    }

    /// protojson: "google.protobuf.Any: type_url is not set", wherever it is.
    #[test]
    fn a_value_without_a_type_url_is_an_error() {
        let pool = pool();
        let mut broken = new(&pool, "google.protobuf.Any");
        broken.set_field_by_name("value", Value::Bytes(vec![8, 1].into()));
        let nested = holder(
            &pool,
            vec![("anys", Value::List(vec![Value::Message(broken.clone())]))],
        );
        let in_payload = any(
            &pool,
            Some(&holder(
                &pool,
                vec![("any", Value::Message(broken.clone()))],
            )),
        );
        let cases = [
            broken.clone(),
            holder(&pool, vec![("any", Value::Message(broken.clone()))]),
            holder(&pool, vec![("nested", Value::Message(nested))]),
            holder(&pool, vec![("picked", Value::Message(in_payload))]),
        ];
        for (emit, proto) in OPTIONS {
            for message in &cases {
                let e = options(emit, proto).write_json(message).unwrap_err();
                assert!(
                    e.contains("google.protobuf.Any: type_url is not set"),
                    "{e}"
                );
            }
            let field = cases[1].descriptor().get_field_by_name("any").unwrap();
            let e = options(emit, proto)
                .write_field_json(cases[1].clone(), &field)
                .unwrap_err();
            assert!(e.contains("type_url is not set"), "{e}");
        }
    }

    /// What is written reads back as the same message, with every option; the documents
    /// themselves (`{}` everywhere) read as [`everywhere`], with both key spellings.
    #[test]
    fn empty_objects_read_as_set_empty_anys_at_every_depth() {
        let pool = pool();
        let message = everywhere(&pool);
        let descriptor = message.descriptor();
        for (emit, proto) in OPTIONS {
            for reject in [false, true] {
                let options = options(emit, proto).reject_unknown_fields(reject);
                let json = options.write_json(&message).unwrap();
                let back = options.read_json(descriptor.clone(), &json).unwrap();
                assert_same(
                    &back,
                    &message,
                    &format!("emit {emit}, proto {proto}, reject {reject}"),
                );
                let json = expected(false, proto).to_string();
                let back = options
                    .read_json(descriptor.clone(), json.as_bytes())
                    .unwrap();
                assert_same(&back, &message, &json);
            }
        }
        // Set, and empty.
        let back = JsonOptions::new()
            .read_json(descriptor.clone(), br#"{"any": {}}"#)
            .unwrap();
        let field = descriptor.get_field_by_name("any").unwrap();
        assert!(back.has_field(&field));
        assert_same(&back, &holder(&pool, vec![("any", empty(&pool))]), "any");
        // A whole `Any`.
        let any_type = pool.get_message_by_name("google.protobuf.Any").unwrap();
        let back = JsonOptions::new().read_json(any_type, b"{}").unwrap();
        assert_same(&back, &any(&pool, None), "root");
        // Behind a list of messages only.
        let outer = pool.get_message_by_name("gw.empty_any.Outer").unwrap();
        let back = JsonOptions::new()
            .read_json(outer.clone(), br#"{"holders": [{"any": {}}]}"#)
            .unwrap();
        let json = JsonOptions::new()
            .emit_unpopulated(false)
            .write_json(&back)
            .unwrap();
        assert_eq!(parse(&json), json!({"holders": [{"any": {}}]}));
    }

    /// A body field (`body: "nested"`, `body: "any"`, ...) reads `{}` the same way.
    #[test]
    fn body_fields_read_empty_objects_as_empty_anys() {
        let pool = pool();
        let descriptor = pool.get_message_by_name("gw.empty_any.Holder").unwrap();
        let path = |name: &str| vec![descriptor.get_field_by_name(name).unwrap()];
        let cases = [
            ("any", json!({}), json!({"any": {}})),
            ("anys", json!([{}, {}]), json!({"anys": [{}, {}]})),
            ("by_name", json!({"k": {}}), json!({"byName": {"k": {}}})),
            (
                "nested",
                json!({"any": {}, "children": [{"custom": {}}]}),
                json!({"nested": {"any": {}, "children": [{"custom": {}}]}}),
            ),
        ];
        for (field, body, expected) in cases {
            let read = JsonOptions::new()
                .read_field_json(
                    descriptor.clone(),
                    &path(field),
                    body.to_string().as_bytes(),
                )
                .unwrap();
            let json = JsonOptions::new()
                .emit_unpopulated(false)
                .write_json(&read)
                .unwrap();
            assert_eq!(parse(&json), expected, "{field}");
        }
    }

    /// protojson: an object without `@type` is an empty `Any` only if unknown fields are
    /// discarded (the default); `"@type": ""` is always an error; other errors stay errors.
    #[test]
    fn objects_without_type_and_other_errors() {
        let pool = pool();
        let descriptor = pool.get_message_by_name("gw.empty_any.Holder").unwrap();
        let read = |options: JsonOptions, body: &str| {
            options.read_json(descriptor.clone(), body.as_bytes())
        };

        let body = r#"{"anys": [{"foo": 1}], "nested": {"any": {"bar": []}}}"#;
        let back = read(JsonOptions::new(), body).unwrap();
        let json = JsonOptions::new()
            .emit_unpopulated(false)
            .write_json(&back)
            .unwrap();
        assert_eq!(parse(&json), json!({"anys": [{}], "nested": {"any": {}}}));
        let strict = JsonOptions::new().reject_unknown_fields(true);
        let e = read(strict, body).unwrap_err();
        assert!(e.contains("@type"), "{e}");
        // `{}` is not an unknown field: read with either option.
        assert!(read(strict, r#"{"anys": [{}]}"#).is_ok());

        for body in [
            r#"{"any": {"@type": ""}}"#,
            r#"{"anys": [{}, {"@type": ""}]}"#,
        ] {
            let e = read(JsonOptions::new(), body).unwrap_err();
            assert!(e.contains("type url"), "{body}: {e}");
        }
        // Another mistake next to a `{}`: refused for it.
        let e = read(JsonOptions::new(), r#"{"any": {}, "name": 5}"#).unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
        // Nothing to rewrite: the first error as it was (with its position).
        let e = read(JsonOptions::new(), r#"{"name": 5}"#).unwrap_err();
        assert!(e.contains("line 1 column"), "{e}");
        let e = read(
            JsonOptions::new(),
            r#"{"any": {"@type": "type.googleapis.com/nope"}}"#,
        )
        .unwrap_err();
        assert!(e.contains("nope") && e.contains("line 1 column"), "{e}");
    }

    /// A stand-in type URL sent by a client is an unknown type, not an empty `Any`: the
    /// domain is the process's secret.
    #[test]
    fn stand_ins_are_not_forgeable_by_name() {
        let pool = pool();
        let descriptor = pool.get_message_by_name("gw.empty_any.Holder").unwrap();
        let body = json!({"any": {"@type": "rzero-empty-any-0000000000000000.invalid/gw.empty_any.Holder"}});
        let back = JsonOptions::new()
            .read_json(descriptor, body.to_string().as_bytes())
            .unwrap();
        let json = JsonOptions::new()
            .emit_unpopulated(false)
            .write_json(&back)
            .unwrap();
        assert_eq!(parse(&json), body);
        assert!(super::domain().starts_with("rzero-empty-any-"));
        assert!(super::is_stand_in(&format!("{}/x.Y", super::domain())));
        assert!(!super::is_stand_in(&format!("{}x/x.Y", super::domain())));
    }

    /// Types that cannot hold an `Any` get no plan, to write or to read: they cost nothing.
    #[test]
    fn types_without_an_any_have_no_plan() {
        let pool = pool();
        let plans = |name: &str| {
            let descriptor = pool.get_message_by_name(name).unwrap();
            let writer = JsonOptions::new().writer(&descriptor).empty_any.is_some();
            let reader = JsonOptions::new().reader(&descriptor).empty_any.is_some();
            (writer, reader)
        };
        for name in [
            "gw.empty_any.Plain",
            "google.protobuf.Struct",
            "google.protobuf.Value",
            "google.protobuf.ListValue",
        ] {
            assert_eq!(plans(name), (false, false), "{name}");
        }
        for name in [
            "gw.empty_any.Holder",
            "gw.empty_any.Outer",
            "google.protobuf.Any",
        ] {
            assert_eq!(plans(name), (true, true), "{name}");
        }
        // The plan keeps only what leads to an `Any`.
        let holder = pool.get_message_by_name("gw.empty_any.Holder").unwrap();
        let plan = super::Plan::new(&holder).unwrap();
        let fields: Vec<_> = plan.types[0].iter().map(|f| f.field.name()).collect();
        assert_eq!(
            fields,
            [
                "any",
                "anys",
                "by_name",
                "nested",
                "children",
                "by_id",
                "picked",
                "other_any"
            ]
        );
    }
}

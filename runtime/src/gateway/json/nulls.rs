//! `null` for every unset field protojson writes as `null` when unpopulated fields are
//! emitted, at every depth of a serialization.
//!
//! Why this exists: grpc-gateway v2's default marshaler is protojson with `EmitUnpopulated`,
//! which writes every field outside a oneof (real, or proto3 `optional`'s synthetic one):
//! set fields as usual, unset scalars at their default, lists as `[]`, maps as `{}`, and
//! unset **singular message fields** (well-known types included) and unset proto2 scalars as
//! `null`. `prost-reflect` (0.16) with `skip_default_fields(false)` does all of that except
//! the `null`s: a field with presence that is not set is left out. [`Nulls`] adds them.
//!
//! How: [`Nulls`] wraps any [`Serializer`] like [`NonFinite`](super::non_finite::NonFinite)
//! does, and follows the message's shape with a [`Plan`] computed from the descriptors once
//! (per route, not per call). `prost-reflect` writes a plain message as one
//! `serialize_map` with an entry per written field (keys as the options say: `json_name` or
//! proto names), so the adapter matches each entry's key against the type's fields, notes
//! which of the `null` candidates were written, hands the entry's value a plan for the
//! field's type (a nested message, the elements of a list, the values of a map), and at
//! `SerializeMap::end` appends `"key": null` for the candidates that were not. The keys are
//! appended after the written ones, not in field order: JSON objects are unordered.
//! Well-known types go through their own serializers (`Timestamp` as a string, `Struct` as
//! an object of any keys, ...) and are passed through untouched, except `Any`: its
//! payload's type is read from the `@type` entry and the payload's fields follow the same
//! rule (its plan is computed then, per `Any` written).
//!
//! Cost: a type whose reachable tree has no `null` candidate and no `Any` has no plan at
//! all, and its messages are written exactly as before (greeter's `HelloReply`, say). With
//! a plan, each entry of a message that can hold one costs a key comparison or a few (the
//! search starts after the last match, and `prost-reflect` writes fields in number order,
//! as the plan lists them); values of types that cannot hold one are passed through
//! unwrapped. The order is only a speed-up: a key is found wherever it is.
//!
//! Reading is unaffected: `null` for a message field reads as unset (for a
//! `google.protobuf.Value` field it reads as `NullValue`, as the mapping says; protojson
//! writes an unset `Value` field as `null` too).

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use serde::ser::{self, Impossible, Serialize, SerializeMap, SerializeSeq, Serializer};
use std::collections::HashMap;
use std::fmt;

/// How to write messages of one type (and everything reachable from it) with their `null`s.
/// `None` from [`Plan::new`] when nothing reachable can need one.
pub(crate) struct Plan {
    root: Elem,
    /// The plain message types reachable from the root, by [`Elem::Message`] index.
    types: Box<[TypePlan]>,
    /// Where `Any` payload types are looked up, as `prost-reflect` does.
    pool: DescriptorPool,
    proto_names: bool,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("root", &self.root)
            .field("types", &self.types.len())
            .finish()
    }
}

/// One plain message type.
#[derive(Default)]
struct TypePlan {
    /// Every field, in number order (the order `prost-reflect` writes them in).
    fields: Box<[FieldPlan]>,
    /// Positions in `fields` of the fields written as `null` when unset; a field's index
    /// here is its slot in [`Seen`].
    nulls: Box<[u32]>,
}

struct FieldPlan {
    /// The output key (JSON or proto name, as the options say).
    key: Box<str>,
    /// How the field's value is written.
    node: Node,
    /// Its index in [`TypePlan::nulls`], if it is written as `null` when unset.
    slot: Option<u32>,
}

/// A message whose fields need following.
#[derive(Clone, Copy, Debug)]
enum Elem {
    /// A plain message type, by index in [`Plan::types`].
    Message(u32),
    /// `google.protobuf.Any`: the payload's type is known when written.
    Any,
}

/// How a value is written: passed through, or followed as a message, a list of messages or
/// a map with message values.
#[derive(Clone, Copy, Debug)]
enum Node {
    Opaque,
    One(Elem),
    List(Elem),
    Map(Elem),
}

/// What the descriptors say a message type is, for this purpose.
pub(super) enum Class {
    Plain,
    Any,
    /// A well-known type other than `Any`: written by its own serializer, left alone.
    WellKnown,
}

pub(super) fn class(message: &MessageDescriptor) -> Class {
    // The types `prost-reflect` writes with their own serializers (`ser/wkt.rs`).
    match message.full_name() {
        "google.protobuf.Any" => Class::Any,
        "google.protobuf.Timestamp"
        | "google.protobuf.Duration"
        | "google.protobuf.Struct"
        | "google.protobuf.FloatValue"
        | "google.protobuf.DoubleValue"
        | "google.protobuf.Int32Value"
        | "google.protobuf.Int64Value"
        | "google.protobuf.UInt32Value"
        | "google.protobuf.UInt64Value"
        | "google.protobuf.BoolValue"
        | "google.protobuf.StringValue"
        | "google.protobuf.BytesValue"
        | "google.protobuf.FieldMask"
        | "google.protobuf.ListValue"
        | "google.protobuf.Value"
        | "google.protobuf.Empty" => Class::WellKnown,
        _ => Class::Plain,
    }
}

/// Whether protojson writes `field` as `null` when it is unset (`unpopulatedFieldRanger`):
/// fields with presence (singular messages, proto2 scalars) outside any oneof (a proto3
/// `optional` field is in a synthetic one, and is left out).
fn null_if_unset(field: &FieldDescriptor) -> bool {
    !field.is_list()
        && !field.is_map()
        && field.containing_oneof().is_none()
        && field.supports_presence()
}

impl Plan {
    /// The plan for writing `descriptor` messages, or `None` if no message of that type can
    /// hold a field to write as `null` (then the adapter is not needed at all).
    pub(crate) fn new(descriptor: &MessageDescriptor, proto_names: bool) -> Option<Plan> {
        let root = match class(descriptor) {
            Class::WellKnown => return None,
            Class::Any => Elem::Any,
            Class::Plain => Elem::Message(0),
        };
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut found: Vec<MessageDescriptor> = Vec::new();
        if let Elem::Message(_) = root {
            index.insert(descriptor.full_name().to_owned(), 0);
            found.push(descriptor.clone());
        }
        // Breadth first over the plain types reachable from the root.
        let mut types: Vec<TypePlan> = Vec::new();
        while types.len() < found.len() {
            let message = found[types.len()].clone();
            let mut fields = Vec::new();
            let mut nulls = Vec::new();
            for field in message.fields() {
                let value_kind = if field.is_map() {
                    match field.kind() {
                        Kind::Message(entry) => entry.map_entry_value_field().kind(),
                        _ => unreachable!("a map field's kind is its entry"),
                    }
                } else {
                    field.kind()
                };
                let elem = match value_kind {
                    Kind::Message(m) => match class(&m) {
                        Class::WellKnown => None,
                        Class::Any => Some(Elem::Any),
                        Class::Plain => {
                            let next = found.len() as u32;
                            let i = *index.entry(m.full_name().to_owned()).or_insert(next);
                            if i == next {
                                found.push(m);
                            }
                            Some(Elem::Message(i))
                        }
                    },
                    _ => None,
                };
                let node = match elem {
                    None => Node::Opaque,
                    Some(elem) if field.is_map() => Node::Map(elem),
                    Some(elem) if field.is_list() => Node::List(elem),
                    Some(elem) => Node::One(elem),
                };
                let slot = null_if_unset(&field).then(|| {
                    nulls.push(fields.len() as u32);
                    nulls.len() as u32 - 1
                });
                let key = if proto_names {
                    field.name()
                } else {
                    field.json_name()
                };
                fields.push(FieldPlan {
                    key: key.into(),
                    node,
                    slot,
                });
            }
            types.push(TypePlan {
                fields: fields.into(),
                nulls: nulls.into(),
            });
        }

        // A type needs following if it has a `null` candidate, or reaches an `Any` or a type
        // that needs following; found by iterating to a fixed point (types may recurse).
        let mut needs: Vec<bool> = types.iter().map(|t| !t.nulls.is_empty()).collect();
        let elem_needs = |elem: Elem, needs: &[bool]| match elem {
            Elem::Any => true,
            Elem::Message(i) => needs[i as usize],
        };
        let node_needs = |node: Node, needs: &[bool]| match node {
            Node::Opaque => false,
            Node::One(e) | Node::List(e) | Node::Map(e) => elem_needs(e, needs),
        };
        loop {
            let mut changed = false;
            for (i, t) in types.iter().enumerate() {
                if !needs[i] && t.fields.iter().any(|f| node_needs(f.node, &needs)) {
                    needs[i] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        if !elem_needs(root, &needs) {
            return None;
        }
        // Values of types that need nothing are passed through without the adapter, and
        // those types' plans are never visited.
        for (i, t) in types.iter_mut().enumerate() {
            if !needs[i] {
                *t = TypePlan::default();
                continue;
            }
            for f in t.fields.iter_mut() {
                if !node_needs(f.node, &needs) {
                    f.node = Node::Opaque;
                }
            }
        }
        Some(Plan {
            root,
            types: types.into(),
            pool: descriptor.parent_pool().clone(),
            proto_names,
        })
    }
}

/// A serializer that writes unset message fields (and proto2 scalars) as `null`, following
/// a [`Plan`]; see the module docs.
pub(crate) struct Nulls<'p, S> {
    inner: S,
    plan: &'p Plan,
    node: Node,
}

impl<'p, S> Nulls<'p, S> {
    /// A serializer for a message of `plan`'s root type.
    pub(crate) fn new(plan: &'p Plan, inner: S) -> Self {
        Nulls {
            inner,
            plan,
            node: Node::One(plan.root),
        }
    }
}

/// A value written through [`Nulls`] as `node`.
struct Child<'a, T: ?Sized> {
    value: &'a T,
    plan: &'a Plan,
    node: Node,
}

impl<T: Serialize + ?Sized> Serialize for Child<'_, T> {
    #[inline]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Nulls {
            inner: serializer,
            plan: self.plan,
            node: self.node,
        })
    }
}

/// `null`.
struct Null;

impl Serialize for Null {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_none()
    }
}

impl<'p, S: Serializer> Serializer for Nulls<'p, S> {
    type SerializeSeq = Elements<'p, S::SerializeSeq>;
    type SerializeMap = Entries<'p, S::SerializeMap>;

    forward_all_but_seq_and_map!(inner);

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        let elem = match self.node {
            Node::List(elem) => Some(elem),
            _ => None,
        };
        Ok(Elements {
            inner: self.inner.serialize_seq(len)?,
            plan: self.plan,
            elem,
        })
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        let state = match self.node {
            Node::One(Elem::Message(ty)) => State::Message {
                ty,
                cursor: 0,
                seen: Seen::default(),
            },
            Node::One(Elem::Any) => State::Any,
            Node::Map(elem) => State::Values(elem),
            Node::List(_) | Node::Opaque => State::Opaque,
        };
        Ok(Entries {
            inner: self.inner.serialize_map(len)?,
            plan: PlanRef::Borrowed(self.plan),
            state,
            pending: Pending::Value(Node::Opaque),
        })
    }
}

/// A list; its elements are followed when it is a list of messages.
pub(crate) struct Elements<'p, S> {
    inner: S,
    plan: &'p Plan,
    elem: Option<Elem>,
}

impl<S: SerializeSeq> SerializeSeq for Elements<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        match self.elem {
            None => self.inner.serialize_element(value),
            Some(elem) => self.inner.serialize_element(&Child {
                value,
                plan: self.plan,
                node: Node::One(elem),
            }),
        }
    }

    #[inline]
    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

/// The plan a map follows: its serializer's, or an `Any` payload's own.
enum PlanRef<'p> {
    Borrowed(&'p Plan),
    Owned(Box<Plan>),
}

impl PlanRef<'_> {
    fn get(&self) -> &Plan {
        match self {
            PlanRef::Borrowed(plan) => plan,
            PlanRef::Owned(plan) => plan,
        }
    }
}

/// Which `null` candidates of a message were written, by slot.
#[derive(Default)]
struct Seen {
    bits: u64,
    /// Slots from 64 on; allocated only for types with that many candidates.
    more: Vec<u64>,
}

impl Seen {
    fn set(&mut self, slot: u32) {
        let (word, bit) = (slot as usize / 64, slot % 64);
        if word == 0 {
            self.bits |= 1 << bit;
        } else {
            if self.more.len() < word {
                self.more.resize(word, 0);
            }
            self.more[word - 1] |= 1 << bit;
        }
    }

    fn get(&self, slot: u32) -> bool {
        let (word, bit) = (slot as usize / 64, slot % 64);
        let bits = if word == 0 {
            self.bits
        } else {
            self.more.get(word - 1).copied().unwrap_or(0)
        };
        bits & (1 << bit) != 0
    }
}

/// What a map being written is.
enum State {
    /// A plain message: `ty` in the plan; `cursor` is where the next key is looked for
    /// first.
    Message { ty: u32, cursor: usize, seen: Seen },
    /// An `Any`, until its `@type` entry names the payload's type.
    Any,
    /// An `Any` of an `Any`: `prost-reflect` writes the inner one as the `value` entry.
    AnyOfAny,
    /// A map field's map: every value is an `Elem`.
    Values(Elem),
    /// Anything else (an `Any` payload of a type needing nothing, say): passed through.
    Opaque,
}

/// What the value after a key is.
enum Pending {
    Value(Node),
    /// An `Any`'s `@type`.
    TypeUrl,
}

/// A map: a message's fields, or a map field's entries.
pub(crate) struct Entries<'p, S> {
    inner: S,
    plan: PlanRef<'p>,
    state: State,
    /// For `serialize_key` then `serialize_value` (`prost-reflect` calls
    /// `serialize_entry`, which does not use this).
    pending: Pending,
}

impl<S: SerializeMap> Entries<'_, S> {
    /// What the value of the entry with this key is, noting a written `null` candidate.
    #[inline]
    fn route<K: Serialize + ?Sized>(&mut self, key: &K) -> Pending {
        match &mut self.state {
            State::Opaque => Pending::Value(Node::Opaque),
            State::Values(elem) => Pending::Value(Node::One(*elem)),
            State::Message { ty, cursor, seen } => {
                let fields = &self.plan.get().types[*ty as usize].fields;
                let Some(i) = probe_str(key, |key| find(fields, *cursor, key)).flatten() else {
                    return Pending::Value(Node::Opaque); // an extension
                };
                *cursor = i + 1;
                let field = &fields[i];
                if let Some(slot) = field.slot {
                    seen.set(slot);
                }
                Pending::Value(field.node)
            }
            State::Any => {
                if probe_str(key, |key| key == "@type") == Some(true) {
                    Pending::TypeUrl
                } else {
                    Pending::Value(Node::Opaque)
                }
            }
            State::AnyOfAny => {
                if probe_str(key, |key| key == "value") == Some(true) {
                    Pending::Value(Node::One(Elem::Any))
                } else {
                    Pending::Value(Node::Opaque)
                }
            }
        }
    }

    /// Sets the state from an `Any`'s type URL: the payload's fields follow its own plan.
    fn payload<V: Serialize + ?Sized>(&mut self, type_url: &V) {
        let plan = self.plan.get();
        let payload = probe_str(type_url, |url| {
            let name = url.rsplit_once('/').map_or(url, |(_, name)| name);
            let descriptor = plan.pool.get_message_by_name(name)?;
            Plan::new(&descriptor, plan.proto_names)
        })
        .flatten();
        self.state = match payload {
            None => State::Opaque,
            Some(payload) => match payload.root {
                Elem::Any => State::AnyOfAny,
                Elem::Message(ty) => {
                    self.plan = PlanRef::Owned(Box::new(payload));
                    State::Message {
                        ty,
                        cursor: 0,
                        seen: Seen::default(),
                    }
                }
            },
        };
    }
}

/// The position of the field with output key `key`, looked for from `from` on first.
#[inline]
fn find(fields: &[FieldPlan], from: usize, key: &str) -> Option<usize> {
    let from = from.min(fields.len());
    let (before, after) = fields.split_at(from);
    after
        .iter()
        .position(|f| &*f.key == key)
        .map(|i| i + from)
        .or_else(|| before.iter().position(|f| &*f.key == key))
}

impl<S: SerializeMap> SerializeMap for Entries<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), S::Error> {
        self.pending = self.route(key);
        self.inner.serialize_key(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        match std::mem::replace(&mut self.pending, Pending::Value(Node::Opaque)) {
            Pending::Value(Node::Opaque) => self.inner.serialize_value(value),
            Pending::Value(node) => self.inner.serialize_value(&Child {
                value,
                plan: self.plan.get(),
                node,
            }),
            Pending::TypeUrl => {
                self.payload(value);
                self.inner.serialize_value(value)
            }
        }
    }

    #[inline]
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), S::Error> {
        match self.route(key) {
            Pending::Value(Node::Opaque) => self.inner.serialize_entry(key, value),
            Pending::Value(node) => self.inner.serialize_entry(
                key,
                &Child {
                    value,
                    plan: self.plan.get(),
                    node,
                },
            ),
            Pending::TypeUrl => {
                self.payload(value);
                self.inner.serialize_entry(key, value)
            }
        }
    }

    fn end(mut self) -> Result<S::Ok, S::Error> {
        if let State::Message { ty, seen, .. } = &self.state {
            let ty = &self.plan.get().types[*ty as usize];
            for (slot, &i) in ty.nulls.iter().enumerate() {
                if !seen.get(slot as u32) {
                    self.inner
                        .serialize_entry(&*ty.fields[i as usize].key, &Null)?;
                }
            }
        }
        self.inner.end()
    }
}

/// `f` of the string `value` writes (`serialize_str`), or `None` if it writes anything else.
/// How the adapter reads keys and type URLs, which reach it only as `Serialize` values.
pub(super) fn probe_str<T: Serialize + ?Sized, R>(
    value: &T,
    f: impl FnOnce(&str) -> R,
) -> Option<R> {
    value.serialize(Probe(f)).ok().flatten()
}

/// The serializer behind [`probe_str`].
struct Probe<F>(F);

/// [`Probe`]'s error: the value is not a string.
#[derive(Debug)]
struct NotAString;

impl fmt::Display for NotAString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a string")
    }
}

impl std::error::Error for NotAString {}

impl ser::Error for NotAString {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotAString
    }
}

/// [`Probe`] methods writing anything but a string: `None`.
macro_rules! not_a_string {
    ($($method:ident($($ty:ty),*)),* $(,)?) => {$(
        fn $method(self, $(_: $ty),*) -> Result<Self::Ok, NotAString> {
            Ok(None)
        }
    )*};
}

impl<R, F: FnOnce(&str) -> R> Serializer for Probe<F> {
    type Ok = Option<R>;
    type Error = NotAString;
    type SerializeSeq = Impossible<Option<R>, NotAString>;
    type SerializeTuple = Impossible<Option<R>, NotAString>;
    type SerializeTupleStruct = Impossible<Option<R>, NotAString>;
    type SerializeTupleVariant = Impossible<Option<R>, NotAString>;
    type SerializeMap = Impossible<Option<R>, NotAString>;
    type SerializeStruct = Impossible<Option<R>, NotAString>;
    type SerializeStructVariant = Impossible<Option<R>, NotAString>;

    #[inline]
    fn serialize_str(self, v: &str) -> Result<Self::Ok, NotAString> {
        Ok(Some((self.0)(v)))
    }

    not_a_string! {
        serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_i128(i128), serialize_u8(u8), serialize_u16(u16),
        serialize_u32(u32), serialize_u64(u64), serialize_u128(u128), serialize_f32(f32),
        serialize_f64(f64), serialize_char(char), serialize_bytes(&[u8]), serialize_none(),
        serialize_unit(), serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Self::Ok, NotAString> {
        Ok(None)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, NotAString> {
        Ok(None)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, NotAString> {
        Ok(None)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotAString> {
        Err(NotAString)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotAString> {
        Err(NotAString)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotAString> {
        Err(NotAString)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotAString> {
        Err(NotAString)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotAString> {
        Err(NotAString)
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotAString> {
        Err(NotAString)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotAString> {
        Err(NotAString)
    }
}

#[cfg(test)]
mod tests {
    use super::Seen;

    /// Types with more than 64 fields written as `null` keep their slots past the first word.
    #[test]
    fn seen_slots_past_the_first_word() {
        let mut seen = Seen::default();
        for slot in [0, 63, 64, 130] {
            assert!(!seen.get(slot));
            seen.set(slot);
            assert!(seen.get(slot));
        }
        for slot in [1, 62, 65, 127, 128, 129, 131, 500] {
            assert!(!seen.get(slot), "{slot}");
        }
    }
}

//! Non-finite floats as the JSON strings `"NaN"`, `"Infinity"` and `"-Infinity"`, at every
//! depth of a serialization.
//!
//! Why this exists: the proto3 JSON mapping writes a non-finite `double` or `float` as one of
//! those strings. `prost-reflect` (0.16) does so for plain `double`/`float` fields, but for
//! the wrappers `google.protobuf.DoubleValue` and `google.protobuf.FloatValue` it hands the
//! raw number to `Serializer::serialize_f64`/`serialize_f32`, and `serde_json` writes a
//! non-finite number as `null` — wrong, and indistinguishable from an unset wrapper. A
//! `serde_json::ser::Formatter` cannot repair it: `serde_json` decides on `null` itself and
//! only calls `write_null`, without the value.
//!
//! [`NonFinite`] wraps any [`Serializer`], forwards every call, and turns `serialize_f64` and
//! `serialize_f32` of a non-finite value into `serialize_str`. Compound serializers (seq,
//! tuple, map, struct, their variants) and the values of `Some`/newtypes are wrapped too, so a
//! wrapper inside a repeated field, a map value, a nested message or an `Any` is covered. A
//! finite number costs one `is_finite` check and goes straight to the inner serializer.
//!
//! `google.protobuf.Value` with a non-finite `number_value` never reaches this adapter: the
//! mapping calls that an error, and `prost-reflect` fails the serialization ("cannot serialize
//! non-finite double in google.protobuf.Value"), so the gateway answers with an error instead
//! of writing a string.

use serde::ser::{
    Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

/// A serializer (or a compound serializer) that writes non-finite floats as strings; see the
/// module docs.
pub(crate) struct NonFinite<S>(pub(crate) S);

/// A value serialized through [`NonFinite`], for the values compound serializers pass on.
struct Wrap<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Wrap<'_, T> {
    #[inline]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(NonFinite(serializer))
    }
}

/// The proto3 JSON string for a non-finite value (`f32` widens to `f64` exactly).
fn non_finite(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v.is_sign_negative() {
        "-Infinity"
    } else {
        "Infinity"
    }
}

/// `Serializer` methods that write one value holding no float: passed straight through.
macro_rules! forward_to_inner {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        #[inline]
        fn $method(self, v: $ty) -> Result<S::Ok, S::Error> {
            self.0.$method(v)
        }
    )*};
}

impl<S: Serializer> Serializer for NonFinite<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = NonFinite<S::SerializeSeq>;
    type SerializeTuple = NonFinite<S::SerializeTuple>;
    type SerializeTupleStruct = NonFinite<S::SerializeTupleStruct>;
    type SerializeTupleVariant = NonFinite<S::SerializeTupleVariant>;
    type SerializeMap = NonFinite<S::SerializeMap>;
    type SerializeStruct = NonFinite<S::SerializeStruct>;
    type SerializeStructVariant = NonFinite<S::SerializeStructVariant>;

    #[inline]
    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            self.0.serialize_f64(v)
        } else {
            self.0.serialize_str(non_finite(v))
        }
    }

    #[inline]
    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            self.0.serialize_f32(v)
        } else {
            self.0.serialize_str(non_finite(f64::from(v)))
        }
    }

    forward_to_inner! {
        serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_i128(i128), serialize_u8(u8), serialize_u16(u16),
        serialize_u32(u32), serialize_u64(u64), serialize_u128(u128), serialize_char(char),
        serialize_str(&str), serialize_bytes(&[u8])
    }

    #[inline]
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_none()
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Wrap(value))
    }

    #[inline]
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }

    #[inline]
    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_struct(name)
    }

    #[inline]
    fn serialize_unit_variant(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_variant(name, variant_index, variant)
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Wrap(value))
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, variant_index, variant, &Wrap(value))
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(NonFinite)
    }

    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(NonFinite)
    }

    #[inline]
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(NonFinite)
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, variant_index, variant, len)
            .map(NonFinite)
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(NonFinite)
    }

    #[inline]
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(NonFinite)
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, variant_index, variant, len)
            .map(NonFinite)
    }

    // `collect_str` writes a string: forwarded so the inner serializer's own (allocation
    // free) version runs. `collect_seq`/`collect_map` keep their defaults, which go through
    // `serialize_seq`/`serialize_map` above.
    #[inline]
    fn collect_str<T: std::fmt::Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.collect_str(value)
    }

    #[inline]
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

// The compound serializers: each wraps the values (and map keys) it is given.

/// Compound serializers that take bare values, by the name of their one method.
macro_rules! wrap_values {
    ($($compound:ident::$method:ident),* $(,)?) => {$(
        impl<S: $compound> $compound for NonFinite<S> {
            type Ok = S::Ok;
            type Error = S::Error;

            #[inline]
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
                self.0.$method(&Wrap(value))
            }

            #[inline]
            fn end(self) -> Result<S::Ok, S::Error> {
                self.0.end()
            }
        }
    )*};
}

wrap_values!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

/// Compound serializers that take named fields.
macro_rules! wrap_fields {
    ($($compound:ident),* $(,)?) => {$(
        impl<S: $compound> $compound for NonFinite<S> {
            type Ok = S::Ok;
            type Error = S::Error;

            #[inline]
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), S::Error> {
                self.0.serialize_field(key, &Wrap(value))
            }

            #[inline]
            fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
                self.0.skip_field(key)
            }

            #[inline]
            fn end(self) -> Result<S::Ok, S::Error> {
                self.0.end()
            }
        }
    )*};
}

wrap_fields!(SerializeStruct, SerializeStructVariant);

impl<S: SerializeMap> SerializeMap for NonFinite<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), S::Error> {
        self.0.serialize_key(&Wrap(key))
    }

    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_value(&Wrap(value))
    }

    // Forwarded rather than left to the default (key then value), in case the inner
    // serializer does better with both at once.
    #[inline]
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), S::Error> {
        self.0.serialize_entry(&Wrap(key), &Wrap(value))
    }

    #[inline]
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;
    use serde_json::json;

    use super::NonFinite;

    /// `value` written by `serde_json` through the adapter, read back as a JSON value.
    fn write(value: &impl Serialize) -> serde_json::Value {
        let mut out = Vec::new();
        value
            .serialize(NonFinite(&mut serde_json::Serializer::new(&mut out)))
            .unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[derive(Serialize)]
    struct Fields {
        x: f64,
        y: Option<f32>,
        z: Wrapped,
        e: Vec<Kind>,
    }

    #[derive(Serialize)]
    struct Wrapped(f64);

    #[derive(Serialize)]
    struct Pair(f32, f64);

    #[derive(Serialize)]
    enum Kind {
        Newtype(f64),
        Tuple(f64, f32),
        Struct { v: f32 },
    }

    #[test]
    fn non_finite_floats_are_strings_at_every_depth() {
        let (nan, inf) = (f64::NAN, f64::INFINITY);
        assert_eq!(write(&nan), json!("NaN"));
        assert_eq!(write(&inf), json!("Infinity"));
        assert_eq!(write(&-inf), json!("-Infinity"));
        assert_eq!(write(&f32::NAN), json!("NaN"));
        assert_eq!(write(&f32::NEG_INFINITY), json!("-Infinity"));
        assert_eq!(write(&vec![nan, 1.5]), json!(["NaN", 1.5]));
        assert_eq!(write(&(inf, 2.0f32)), json!(["Infinity", 2.0]));
        assert_eq!(write(&Pair(f32::NAN, 0.5)), json!(["NaN", 0.5]));
        assert_eq!(
            write(&BTreeMap::from([("k", -inf)])),
            json!({"k": "-Infinity"})
        );
        let fields = Fields {
            x: nan,
            y: Some(f32::INFINITY),
            z: Wrapped(-inf),
            e: vec![
                Kind::Newtype(nan),
                Kind::Tuple(inf, 0.25),
                Kind::Struct { v: f32::NAN },
            ],
        };
        assert_eq!(
            write(&fields),
            json!({
                "x": "NaN",
                "y": "Infinity",
                "z": "-Infinity",
                "e": [
                    {"Newtype": "NaN"},
                    {"Tuple": ["Infinity", 0.25]},
                    {"Struct": {"v": "NaN"}},
                ],
            })
        );
        // Into a `serde_json::Value` as well (`write_field_json`'s path).
        let value = fields.serialize(NonFinite(serde_json::value::Serializer));
        assert_eq!(value.unwrap()["e"][0], json!({"Newtype": "NaN"}));
    }

    #[test]
    fn finite_numbers_and_the_rest_pass_through() {
        assert_eq!(write(&-0.5f64), json!(-0.5));
        assert_eq!(write(&3.25f32), json!(3.25));
        assert_eq!(write(&f64::MAX), json!(f64::MAX));
        assert_eq!(
            write(&(1u64, -2i32, "s", true, None::<f64>, ())),
            json!([1, -2, "s", true, null, null])
        );
    }
}

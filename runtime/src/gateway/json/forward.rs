//! The part of a `serde::Serializer` adapter that only passes calls on.
//!
//! [`Nulls`](super::nulls) and [`EmptyAnys`](super::empty_any) each follow what
//! `prost-reflect` writes through `serialize_map` and `serialize_seq` (messages, lists and
//! maps) and nothing else; every other method goes straight to the serializer they wrap.
//! This macro writes those, so each adapter spells out only the two it follows.

/// Inside `impl<S: Serializer> Serializer for Adapter<S>`: `Ok`, `Error`, the compound types
/// but `SerializeSeq` and `SerializeMap`, and every method but `serialize_seq` and
/// `serialize_map`, passed on to `self.$inner` (the wrapped `S`).
macro_rules! forward_all_but_seq_and_map {
    ($inner:tt) => {
        type Ok = S::Ok;
        type Error = S::Error;
        type SerializeTuple = S::SerializeTuple;
        type SerializeTupleStruct = S::SerializeTupleStruct;
        type SerializeTupleVariant = S::SerializeTupleVariant;
        type SerializeStruct = S::SerializeStruct;
        type SerializeStructVariant = S::SerializeStructVariant;

        forward_all_but_seq_and_map!(@values $inner;
            serialize_bool(v: bool), serialize_i8(v: i8), serialize_i16(v: i16),
            serialize_i32(v: i32), serialize_i64(v: i64), serialize_i128(v: i128),
            serialize_u8(v: u8), serialize_u16(v: u16), serialize_u32(v: u32),
            serialize_u64(v: u64), serialize_u128(v: u128), serialize_f32(v: f32),
            serialize_f64(v: f64), serialize_char(v: char), serialize_str(v: &str),
            serialize_bytes(v: &[u8]), serialize_none(), serialize_unit(),
            serialize_unit_struct(name: &'static str),
            serialize_unit_variant(name: &'static str, index: u32, variant: &'static str),
        );

        #[inline]
        fn serialize_some<T: serde::Serialize + ?Sized>(
            self,
            value: &T,
        ) -> Result<S::Ok, S::Error> {
            self.$inner.serialize_some(value)
        }

        #[inline]
        fn serialize_newtype_struct<T: serde::Serialize + ?Sized>(
            self,
            name: &'static str,
            value: &T,
        ) -> Result<S::Ok, S::Error> {
            self.$inner.serialize_newtype_struct(name, value)
        }

        #[inline]
        fn serialize_newtype_variant<T: serde::Serialize + ?Sized>(
            self,
            name: &'static str,
            variant_index: u32,
            variant: &'static str,
            value: &T,
        ) -> Result<S::Ok, S::Error> {
            self.$inner
                .serialize_newtype_variant(name, variant_index, variant, value)
        }

        #[inline]
        fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
            self.$inner.serialize_tuple(len)
        }

        #[inline]
        fn serialize_tuple_struct(
            self,
            name: &'static str,
            len: usize,
        ) -> Result<Self::SerializeTupleStruct, S::Error> {
            self.$inner.serialize_tuple_struct(name, len)
        }

        #[inline]
        fn serialize_tuple_variant(
            self,
            name: &'static str,
            variant_index: u32,
            variant: &'static str,
            len: usize,
        ) -> Result<Self::SerializeTupleVariant, S::Error> {
            self.$inner
                .serialize_tuple_variant(name, variant_index, variant, len)
        }

        #[inline]
        fn serialize_struct(
            self,
            name: &'static str,
            len: usize,
        ) -> Result<Self::SerializeStruct, S::Error> {
            self.$inner.serialize_struct(name, len)
        }

        #[inline]
        fn serialize_struct_variant(
            self,
            name: &'static str,
            variant_index: u32,
            variant: &'static str,
            len: usize,
        ) -> Result<Self::SerializeStructVariant, S::Error> {
            self.$inner
                .serialize_struct_variant(name, variant_index, variant, len)
        }

        #[inline]
        fn collect_str<T: std::fmt::Display + ?Sized>(
            self,
            value: &T,
        ) -> Result<S::Ok, S::Error> {
            self.$inner.collect_str(value)
        }

        #[inline]
        fn is_human_readable(&self) -> bool {
            self.$inner.is_human_readable()
        }
    };
    (@values $inner:tt; $($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        #[inline]
        fn $method(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> {
            self.$inner.$method($($arg),*)
        }
    )*};
}

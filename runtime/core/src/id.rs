//! Time-sortable record ids.

/// Declares an id type: a UUIDv7, so ids sort by creation time (millisecond precision,
/// monotonic within a process). Text form is the hyphenated UUID; `as_u128` gives the
/// big-endian integer that sorts the same way (the store's key).
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new id for now.
            pub fn new() -> Self {
                $name(uuid::Uuid::now_v7())
            }

            /// The id as a 128-bit big-endian integer (sorts as the id does).
            pub fn as_u128(self) -> u128 {
                self.0.as_u128()
            }

            /// The id from its integer form.
            pub fn from_u128(v: u128) -> Self {
                $name(uuid::Uuid::from_u128(v))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s.trim()).map($name).map_err(|_| {
                    format!("{s:?} is not an id (a UUID such as 0195f0c2-7b1e-7c3a-9d1e-2f4b6a8c0d12)")
                })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use uuid_id;

//! `columns!` declares a struct of typed column handles with their OCSF paths: the paths are
//! the normalizer's contribution to the projection (`PATHS`), the struct is resolved once
//! against a class writer (`resolve`).

macro_rules! columns {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($field:ident : $kind:ident = $path:literal),* $(,)? }) => {
        $(#[$meta])*
        $vis struct $name { $(pub $field: columns!(@ty $kind)),* }
        impl $name {
            pub const PATHS: &'static [&'static str] = &[$($path),*];
            pub fn resolve(w: &ocelot_schemas::BatchWriter) -> Result<Self, ocelot_schemas::WriterError> {
                Ok($name { $($field: columns!(@get w $kind $path)?),* })
            }
        }
    };
    (@ty str) => { ocelot_schemas::StrCol };
    (@ty i32) => { ocelot_schemas::I32Col };
    (@ty i64) => { ocelot_schemas::I64Col };
    (@ty f64) => { ocelot_schemas::F64Col };
    (@ty bool) => { ocelot_schemas::BoolCol };
    (@ty ts) => { ocelot_schemas::TsCol };
    (@ty list) => { ocelot_schemas::ListCol };
    (@get $w:ident str $p:literal) => { $w.str_col($p) };
    (@get $w:ident i32 $p:literal) => { $w.i32_col($p) };
    (@get $w:ident i64 $p:literal) => { $w.i64_col($p) };
    (@get $w:ident f64 $p:literal) => { $w.f64_col($p) };
    (@get $w:ident bool $p:literal) => { $w.bool_col($p) };
    (@get $w:ident ts $p:literal) => { $w.ts_col($p) };
    (@get $w:ident list $p:literal) => { $w.list_col($p) };
}

pub(crate) use columns;

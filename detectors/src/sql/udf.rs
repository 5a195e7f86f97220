//! SQL functions the rules use, registered once per session (the detection engine's and
//! `ocelot sql`'s alike). Documented in docs/detection/sql.md.
//!
//! - `is_mutation(operation)`: create, update or delete (not a read, not an unknown verb).
//! - `mutation_kind(operation)`: `create`, `read`, `update`, `delete` or `other`.
//! - `is_destructive(operation)`: a delete verb, or `Stop*` / `Disable*`.
//! - `is_agent(actor)`: the actor is an AI agent the registry recognized (`actor.app_name`
//!   set); also takes the `app_name` string itself.
//! - `json_get(json_text, 'a.b.c')`: the value at a dotted path of a JSON text column
//!   (`api.request.data`, `unmapped`), as text: objects entered by key, arrays on the way
//!   searched member by member, objects and arrays returned as compact JSON.
//! - `json_len(json_text)`: the number of members of a JSON array (0 for anything else).
//! - `resources_match(resources, resources)`: whether two `resources` lists name a common
//!   resource (by uid or name, an ARN also by its last part, without case): 1 if they do, -1 if
//!   both name resources and none in common, 0 if either names none. How a tool call and a
//!   CloudTrail change are told to be the same act (`agent_mutations`, as the engine's linker).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;

use ocelot_normalize::verbs;

fn over_strings<T>(args: &[ColumnarValue], f: impl Fn(&str) -> T, build: impl Fn(Vec<Option<T>>) -> ArrayRef) -> Result<ColumnarValue> {
    let [arg] = args else { return exec_err!("expects one argument: the operation name") };
    let arr = arg.to_array(1)?;
    let Some(s) = arr.as_string_opt::<i32>() else { return exec_err!("expects a string (api.operation)") };
    let out = build(s.iter().map(|v| v.map(&f)).collect());
    Ok(match arg {
        ColumnarValue::Scalar(_) => ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?),
        ColumnarValue::Array(_) => ColumnarValue::Array(out),
    })
}

fn bool_udf(name: &str, f: fn(&str) -> bool) -> ScalarUDF {
    create_udf(name, vec![DataType::Utf8], DataType::Boolean, Volatility::Immutable, Arc::new(move |args: &[ColumnarValue]| over_strings(args, f, |v| Arc::new(BooleanArray::from(v)))))
}

/// `is_agent(actor)`: any argument type, so it takes the `actor` struct of every class.
#[derive(Debug, PartialEq, Eq, Hash)]
struct IsAgent {
    signature: Signature,
}

impl ScalarUDFImpl for IsAgent {
    fn name(&self) -> &str {
        "is_agent"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else { return exec_err!("is_agent expects one argument: actor") };
        let arr = arg.to_array(args.number_rows)?;
        let app = match arr.data_type() {
            DataType::Struct(_) => {
                let st = arr.as_struct();
                match st.column_by_name("app_name") {
                    Some(a) => crate::fields::column_with_parent_nulls(st, a),
                    None => return Ok(ColumnarValue::Array(Arc::new(BooleanArray::from(vec![false; arr.len()])))),
                }
            }
            DataType::Utf8 => arr.clone(),
            other => return exec_err!("is_agent expects the actor struct or its app_name, not {other}"),
        };
        let s = app.as_string_opt::<i32>().cloned().unwrap_or_else(|| StringArray::new_null(arr.len()));
        let out: BooleanArray = (0..s.len()).map(|i| Some(s.is_valid(i) && !s.value(i).is_empty())).collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `resources_match(a, b)`: any `resources` lists (lists of structs with `uid` and `name`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ResourcesMatch {
    signature: Signature,
}

/// The names each row's resources go by (see `agent_link::resource_keys`).
fn row_keys(arr: &ArrayRef, row: usize) -> Vec<String> {
    let Some(list) = arr.as_list_opt::<i32>() else { return Vec::new() };
    if list.is_null(row) {
        return Vec::new();
    }
    let items = list.value(row);
    let Some(st) = items.as_struct_opt() else { return Vec::new() };
    let (uid, name) = (st.column_by_name("uid").cloned(), st.column_by_name("name").cloned());
    let mut out = Vec::new();
    for i in (0..st.len()).filter(|&i| st.is_valid(i)) {
        for v in [crate::fields::str_at(&uid, i), crate::fields::str_at(&name, i)].into_iter().flatten() {
            out.extend(crate::agent_link::resource_names(v));
        }
    }
    out
}

impl ScalarUDFImpl for ResourcesMatch {
    fn name(&self) -> &str {
        "resources_match"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [a, b] = args.args.as_slice() else { return exec_err!("resources_match expects two resources lists") };
        let (a, b) = (a.to_array(args.number_rows)?, b.to_array(args.number_rows)?);
        let out: arrow::array::Int64Array = (0..args.number_rows)
            .map(|row| {
                let (x, y) = (row_keys(&a, row), row_keys(&b, row));
                Some(if x.is_empty() || y.is_empty() {
                    0
                } else if x.iter().any(|k| y.contains(k)) {
                    1
                } else {
                    -1
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

fn json_get(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let [doc, path] = args else { return exec_err!("json_get expects (json_text, 'dotted.path')") };
    let ColumnarValue::Scalar(path) = path else { return exec_err!("json_get's path must be a constant string") };
    let Some(path) = path.try_as_str().flatten() else { return exec_err!("json_get's path must be a string") };
    let path: Vec<String> = path.split('.').map(str::to_string).collect();
    over_strings(std::slice::from_ref(doc), |text| crate::fields::lookup_text(text, &path), |v| Arc::new(StringArray::from(v.into_iter().map(Option::flatten).collect::<Vec<_>>())))
}

fn json_len(text: &str) -> i64 {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Array(a)) => a.len() as i64,
        _ => 0,
    }
}

/// Registers the functions on a session.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(bool_udf("is_mutation", verbs::is_mutation));
    ctx.register_udf(ScalarUDF::new_from_impl(ResourcesMatch { signature: Signature::any(2, Volatility::Immutable) }));
    ctx.register_udf(bool_udf("is_destructive", verbs::is_destructive));
    ctx.register_udf(create_udf(
        "mutation_kind",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| over_strings(args, verbs::mutation_kind, |v| Arc::new(StringArray::from(v)))),
    ));
    ctx.register_udf(create_udf(
        "json_len",
        vec![DataType::Utf8],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| over_strings(args, json_len, |v| Arc::new(arrow::array::Int64Array::from(v)))),
    ));
    ctx.register_udf(create_udf("json_get", vec![DataType::Utf8, DataType::Utf8], DataType::Utf8, Volatility::Immutable, Arc::new(json_get)));
    ctx.register_udf(ScalarUDF::new_from_impl(IsAgent { signature: Signature::any(1, Volatility::Immutable) }));
}

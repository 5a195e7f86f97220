//! Files keep only the columns that hold a value.
//!
//! A class's projection has 150 to 600 leaf columns and the rows of one partition fill a third
//! of them: every other column costs a column chunk, its entry in the footer and its share of
//! the footer's Arrow schema, for nulls. Over an organization trail's hundreds of partitions
//! that was a third of the lake's bytes. So a file leaves out its all-null columns, also inside
//! structs and lists of structs. Each file's schema is then a part of its table's: readers take
//! the table's schema and fill what a file lacks with nulls (DataFusion does, as for files
//! written with an older, narrower projection), and compaction writes the union of its inputs'
//! columns ([`union`], [`conform`]).

use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, AsArray, ListArray, RecordBatch, StructArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use datafusion::common::nested_struct::cast_column;

/// `batch` without its all-null columns (at any depth). A batch with no rows is left whole.
pub fn without_null_columns(batch: &RecordBatch) -> RecordBatch {
    if batch.num_rows() == 0 {
        return batch.clone();
    }
    let (fields, columns): (Vec<FieldRef>, Vec<ArrayRef>) = batch.schema().fields().iter().zip(batch.columns()).filter_map(|(f, c)| prune(f, c, None)).unzip();
    if fields.is_empty() {
        return batch.clone();
    }
    RecordBatch::try_new(Arc::new(Schema::new_with_metadata(fields, batch.schema().metadata().clone())), columns).expect("a pruned batch keeps its columns' lengths")
}

/// The column without its all-null parts; `None` when it is all null. A struct's child counts
/// as null where the struct is (our builders leave values there that Parquet does not keep).
fn prune(field: &FieldRef, column: &ArrayRef, parent: Option<&NullBuffer>) -> Option<(FieldRef, ArrayRef)> {
    let nulls = NullBuffer::union(parent, column.logical_nulls().as_ref());
    if nulls.as_ref().map_or(0, NullBuffer::null_count) == column.len() {
        return None;
    }
    match column.data_type() {
        DataType::Struct(_) => {
            let s = column.as_struct();
            let (fields, children): (Vec<FieldRef>, Vec<ArrayRef>) = s.fields().iter().zip(s.columns()).filter_map(|(f, c)| prune(f, c, nulls.as_ref())).unzip();
            if fields.is_empty() {
                // Present but with no leaf set: cannot happen with our writer (such a struct is
                // null); kept whole rather than turned into a null.
                return Some((field.clone(), column.clone()));
            }
            let fields = Fields::from(fields);
            let pruned = StructArray::try_new(fields.clone(), children, s.nulls().cloned()).ok()?;
            Some((with_type(field, DataType::Struct(fields)), Arc::new(pruned)))
        }
        DataType::List(item) => {
            let l = column.as_list::<i32>();
            // Lists whose elements are all null keep them (`[null]` is not `null`).
            let Some((item, values)) = prune(item, l.values(), None) else { return Some((field.clone(), column.clone())) };
            let pruned = ListArray::try_new(item.clone(), l.offsets().clone(), values, l.nulls().cloned()).ok()?;
            Some((with_type(field, DataType::List(item)), Arc::new(pruned)))
        }
        _ => Some((field.clone(), column.clone())),
    }
}

fn with_type(field: &FieldRef, t: DataType) -> FieldRef {
    Arc::new(Field::clone(field).with_data_type(t))
}

/// The columns of `full` (the table's schema, in its order) that any of `parts` has, at any
/// depth; `None` when a part has a column `full` lacks (then files cannot be merged into one).
pub fn union(full: &Schema, parts: &[SchemaRef]) -> Option<SchemaRef> {
    let part_fields: Vec<&Fields> = parts.iter().map(|s| s.fields()).collect();
    if !part_fields.iter().all(|p| covers(full.fields(), p)) {
        return None;
    }
    Some(Arc::new(Schema::new_with_metadata(restrict(full.fields(), &part_fields), full.metadata().clone())))
}

/// Whether `schema` holds every column of `part` (so `part`'s rows can be written in it).
pub fn holds(schema: &Schema, part: &Schema) -> bool {
    covers(schema.fields(), part.fields())
}

/// Whether every column of `part` is in `full` with a type `full`'s can hold.
fn covers(full: &Fields, part: &Fields) -> bool {
    part.iter().all(|p| {
        full.find(p.name()).is_some_and(|(_, f)| match (f.data_type(), p.data_type()) {
            (DataType::Struct(fc), DataType::Struct(pc)) => covers(fc, pc),
            (DataType::List(fi), DataType::List(pi)) => match (fi.data_type(), pi.data_type()) {
                (DataType::Struct(fc), DataType::Struct(pc)) => covers(fc, pc),
                (a, b) => a == b,
            },
            (a, b) => a == b,
        })
    })
}

fn restrict(full: &Fields, parts: &[&Fields]) -> Vec<FieldRef> {
    full.iter()
        .filter_map(|f| {
            let present: Vec<&FieldRef> = parts.iter().filter_map(|p| p.find(f.name()).map(|(_, pf)| pf)).collect();
            if present.is_empty() {
                return None;
            }
            let children = |t: &DataType| -> Option<Fields> {
                match t {
                    DataType::Struct(c) => Some(c.clone()),
                    DataType::List(i) => match i.data_type() {
                        DataType::Struct(c) => Some(c.clone()),
                        _ => None,
                    },
                    _ => None,
                }
            };
            let sub: Vec<Fields> = present.iter().filter_map(|p| children(p.data_type())).collect();
            let sub: Vec<&Fields> = sub.iter().collect();
            Some(match f.data_type() {
                DataType::Struct(c) => with_type(f, DataType::Struct(restrict(c, &sub).into())),
                DataType::List(item) => match item.data_type() {
                    DataType::Struct(c) => with_type(f, DataType::List(with_type(item, DataType::Struct(restrict(c, &sub).into())))),
                    _ => f.clone(),
                },
                _ => f.clone(),
            })
        })
        .collect()
}

/// `batch` in `schema`, a superset of its columns: what it lacks is null.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, arrow::error::ArrowError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch.clone());
    }
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => cast_column(c, f.data_type(), &Default::default()).map_err(|e| arrow::error::ArrowError::CastError(format!("{}: {e}", f.name()))),
            None => Ok(new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, StringArray};

    fn batch() -> RecordBatch {
        let user = Fields::from(vec![Field::new("name", DataType::Utf8, true), Field::new("uid", DataType::Utf8, true)]);
        let actor = StructArray::new(user.clone(), vec![Arc::new(StringArray::from(vec![Some("alice"), None])) as ArrayRef, Arc::new(StringArray::from(vec![None::<&str>, None]))], None);
        let item = Fields::from(vec![Field::new("uid", DataType::Utf8, true), Field::new("type", DataType::Utf8, true)]);
        let values = StructArray::new(item.clone(), vec![Arc::new(StringArray::from(vec![Some("i-1"), Some("i-2")])) as ArrayRef, Arc::new(StringArray::from(vec![None::<&str>, None]))], None);
        let list_field = Arc::new(Field::new("item", DataType::Struct(item), true));
        let resources = ListArray::new(list_field.clone(), arrow::buffer::OffsetBuffer::from_lengths([2, 0]), Arc::new(values), None);
        let schema = Schema::new(vec![
            Field::new("time", DataType::Int32, true),
            Field::new("actor", DataType::Struct(user), true),
            Field::new("resources", DataType::List(list_field), true),
            Field::new("message", DataType::Utf8, true),
        ]);
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(Int32Array::from(vec![1, 2])), Arc::new(actor), Arc::new(resources), Arc::new(StringArray::from(vec![None::<&str>, None]))]).unwrap()
    }

    fn leaves(s: &Schema) -> Vec<String> {
        let mut out = Vec::new();
        fn walk(prefix: &str, fields: &Fields, out: &mut Vec<String>) {
            for f in fields {
                let p = if prefix.is_empty() { f.name().clone() } else { format!("{prefix}.{}", f.name()) };
                match f.data_type() {
                    DataType::Struct(c) => walk(&p, c, out),
                    DataType::List(i) => match i.data_type() {
                        DataType::Struct(c) => walk(&p, c, out),
                        _ => out.push(p),
                    },
                    _ => out.push(p),
                }
            }
        }
        walk("", s.fields(), &mut out);
        out
    }

    #[test]
    fn all_null_columns_leave_at_every_depth_and_values_stay() {
        let full = batch();
        let sparse = without_null_columns(&full);
        assert_eq!(leaves(&sparse.schema()), ["time", "actor.name", "resources.uid"]);
        // Back in the full schema, the rows are the same.
        assert_eq!(conform(&sparse, &full.schema()).unwrap(), full);
    }

    #[test]
    fn a_child_set_only_where_its_struct_is_null_is_null() {
        // What Parquet keeps: a value under a null struct is not written.
        let fields = Fields::from(vec![Field::new("name", DataType::Utf8, true), Field::new("uid", DataType::Utf8, true)]);
        let user = StructArray::new(
            fields.clone(),
            vec![Arc::new(StringArray::from(vec![Some("alice"), None])) as ArrayRef, Arc::new(StringArray::from(vec![None, Some("stale")]))],
            Some(NullBuffer::from(vec![true, false])),
        );
        let schema = Schema::new(vec![Field::new("user", DataType::Struct(fields), true)]);
        let b = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(user)]).unwrap();
        assert_eq!(leaves(&without_null_columns(&b).schema()), ["user.name"]);
    }

    #[test]
    fn the_union_of_parts_is_in_the_tables_order() {
        let full = batch();
        let a = without_null_columns(&full).schema();
        let b = Arc::new(Schema::new(vec![Field::new("message", DataType::Utf8, true), Field::new("time", DataType::Int32, true)]));
        let u = union(&full.schema(), &[a, b.clone()]).unwrap();
        assert_eq!(leaves(&u), ["time", "actor.name", "resources.uid", "message"]);
        // A column the table lacks: no union.
        let c = Arc::new(Schema::new(vec![Field::new("other", DataType::Utf8, true)]));
        assert!(union(&full.schema(), &[b, c]).is_none());
    }
}

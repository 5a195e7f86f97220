//! Appends OCSF events straight into the Arrow builders of a projected class schema.
//!
//! A normalizer resolves typed column handles once (`writer.str_col("actor.user.name")`), then
//! per event sets the values it has and calls [`BatchWriter::end_row`]. Nothing is written for
//! absent values: every column is padded with nulls lazily (in bulk, when it is next written or
//! when the batch is finished), so the cost of an event is the values it carries, not the width
//! of the projection. A struct is null in a row where none of its leaves was set.
//!
//! Arrays (`resources`, `observables`, `metadata.profiles`) are lists: each has its own
//! "domain" of items; [`BatchWriter::begin_item`]/[`BatchWriter::end_item`] bracket one item.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, ListArray, RecordBatch, StringBuilder, StructArray, TimestampMillisecondBuilder};
use arrow::buffer::{BooleanBuffer, NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, FieldRef, Fields, SchemaRef};
use arrow::error::ArrowError;

enum Builder {
    Str(StringBuilder),
    I32(Int32Builder),
    I64(Int64Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Ts(TimestampMillisecondBuilder, Option<Arc<str>>),
}

impl Builder {
    fn new(dt: &DataType) -> Option<Builder> {
        Some(match dt {
            DataType::Utf8 => Builder::Str(StringBuilder::new()),
            DataType::Int32 => Builder::I32(Int32Builder::new()),
            DataType::Int64 => Builder::I64(Int64Builder::new()),
            DataType::Float64 => Builder::F64(Float64Builder::new()),
            DataType::Boolean => Builder::Bool(BooleanBuilder::new()),
            DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, tz) => Builder::Ts(TimestampMillisecondBuilder::new(), tz.clone()),
            _ => return None,
        })
    }

    fn len(&self) -> usize {
        match self {
            Builder::Str(b) => b.len(),
            Builder::I32(b) => b.len(),
            Builder::I64(b) => b.len(),
            Builder::F64(b) => b.len(),
            Builder::Bool(b) => b.len(),
            Builder::Ts(b, _) => b.len(),
        }
    }

    fn append_nulls(&mut self, n: usize) {
        match self {
            Builder::Str(b) => b.append_nulls(n),
            Builder::I32(b) => b.append_nulls(n),
            Builder::I64(b) => b.append_nulls(n),
            Builder::F64(b) => b.append_nulls(n),
            Builder::Bool(b) => b.append_nulls(n),
            Builder::Ts(b, _) => b.append_nulls(n),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Ts(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
        }
    }
}

struct Leaf {
    builder: Builder,
    domain: usize,
}

struct List {
    /// The domain the list itself lives in (0 = rows), and the domain of its items.
    parent: usize,
    own: usize,
    /// Items per parent position, padded lazily.
    counts: Vec<i32>,
}

enum Shape {
    Leaf(usize),
    Struct(Fields, Vec<Shape>),
    List(FieldRef, usize, Box<Shape>),
}

/// A typed handle on a column; resolved once, used per event.
macro_rules! handles {
    ($($name:ident),*) => {$(
        #[derive(Debug, Clone, Copy)]
        pub struct $name(usize);
    )*};
}
handles!(StrCol, I32Col, I64Col, F64Col, BoolCol, TsCol, ListCol);

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("column `{0}` is not in the projection")]
    NoColumn(String),
    #[error("column `{0}` is {1}, not {2}")]
    WrongType(String, DataType, &'static str),
    #[error("unsupported Arrow type at `{0}`: {1}")]
    Unsupported(String, DataType),
    #[error(transparent)]
    Arrow(#[from] ArrowError),
}

/// Row-at-a-time writer for one projected OCSF class.
pub struct BatchWriter {
    schema: SchemaRef,
    shapes: Vec<Shape>,
    leaves: Vec<Leaf>,
    lists: Vec<List>,
    /// Current position in each domain: domain 0 counts finished rows, a list's domain counts
    /// its finished items.
    cursor: Vec<usize>,
    paths: HashMap<String, Slot>,
}

#[derive(Clone, Copy)]
enum Slot {
    Leaf(usize),
    List(usize),
}

impl BatchWriter {
    pub fn new(schema: SchemaRef) -> Result<BatchWriter, WriterError> {
        let mut w = BatchWriter { schema: schema.clone(), shapes: Vec::new(), leaves: Vec::new(), lists: Vec::new(), cursor: vec![0], paths: HashMap::new() };
        for f in schema.fields() {
            let shape = w.shape(f, "", 0)?;
            w.shapes.push(shape);
        }
        Ok(w)
    }

    fn shape(&mut self, f: &FieldRef, prefix: &str, domain: usize) -> Result<Shape, WriterError> {
        let path = if prefix.is_empty() { f.name().clone() } else { format!("{prefix}.{}", f.name()) };
        Ok(match f.data_type() {
            DataType::Struct(children) => {
                let shapes = children.iter().map(|c| self.shape(c, &path, domain)).collect::<Result<_, _>>()?;
                Shape::Struct(children.clone(), shapes)
            }
            DataType::List(item) => {
                let own = self.cursor.len();
                self.cursor.push(0);
                let list = self.lists.len();
                self.lists.push(List { parent: domain, own, counts: Vec::new() });
                self.paths.insert(path.clone(), Slot::List(list));
                // The item of a list of scalars is addressed by the list's own path.
                let item_shape = match item.data_type() {
                    DataType::Struct(children) => {
                        let shapes = children.iter().map(|c| self.shape(c, &path, own)).collect::<Result<_, _>>()?;
                        Shape::Struct(children.clone(), shapes)
                    }
                    dt => Shape::Leaf(self.leaf(dt, &format!("{path}[]"), own)?),
                };
                Shape::List(item.clone(), list, Box::new(item_shape))
            }
            dt => Shape::Leaf(self.leaf(dt, &path, domain)?),
        })
    }

    fn leaf(&mut self, dt: &DataType, path: &str, domain: usize) -> Result<usize, WriterError> {
        let builder = Builder::new(dt).ok_or_else(|| WriterError::Unsupported(path.to_string(), dt.clone()))?;
        self.leaves.push(Leaf { builder, domain });
        self.paths.insert(path.to_string(), Slot::Leaf(self.leaves.len() - 1));
        Ok(self.leaves.len() - 1)
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows finished so far in the open batch.
    pub fn rows(&self) -> usize {
        self.cursor[0]
    }

    fn resolve_leaf(&self, path: &str, want: &'static str, ok: fn(&Builder) -> bool) -> Result<usize, WriterError> {
        match self.paths.get(path) {
            Some(Slot::Leaf(i)) if ok(&self.leaves[*i].builder) => Ok(*i),
            Some(Slot::Leaf(i)) => Err(WriterError::WrongType(path.into(), self.leaves[*i].builder.finish_type(), want)),
            _ => Err(WriterError::NoColumn(path.into())),
        }
    }

    pub fn str_col(&self, path: &str) -> Result<StrCol, WriterError> {
        self.resolve_leaf(path, "Utf8", |b| matches!(b, Builder::Str(_))).map(StrCol)
    }
    pub fn i32_col(&self, path: &str) -> Result<I32Col, WriterError> {
        self.resolve_leaf(path, "Int32", |b| matches!(b, Builder::I32(_))).map(I32Col)
    }
    pub fn i64_col(&self, path: &str) -> Result<I64Col, WriterError> {
        self.resolve_leaf(path, "Int64", |b| matches!(b, Builder::I64(_))).map(I64Col)
    }
    pub fn f64_col(&self, path: &str) -> Result<F64Col, WriterError> {
        self.resolve_leaf(path, "Float64", |b| matches!(b, Builder::F64(_))).map(F64Col)
    }
    pub fn bool_col(&self, path: &str) -> Result<BoolCol, WriterError> {
        self.resolve_leaf(path, "Boolean", |b| matches!(b, Builder::Bool(_))).map(BoolCol)
    }
    pub fn ts_col(&self, path: &str) -> Result<TsCol, WriterError> {
        self.resolve_leaf(path, "Timestamp(ms)", |b| matches!(b, Builder::Ts(..))).map(TsCol)
    }
    /// A list column; for a list of strings, its items are written with [`BatchWriter::push_str`].
    pub fn list_col(&self, path: &str) -> Result<ListCol, WriterError> {
        match self.paths.get(path) {
            Some(Slot::List(i)) => Ok(ListCol(*i)),
            _ => Err(WriterError::NoColumn(path.into())),
        }
    }

    /// Pads a leaf to its domain's current position; false if it is already set there.
    #[inline]
    fn ready(&mut self, leaf: usize) -> bool {
        let l = &mut self.leaves[leaf];
        let at = self.cursor[l.domain];
        let len = l.builder.len();
        if len < at {
            l.builder.append_nulls(at - len);
        }
        len <= at
    }

    #[inline]
    pub fn str(&mut self, c: StrCol, v: &str) {
        if self.ready(c.0)
            && let Builder::Str(b) = &mut self.leaves[c.0].builder
        {
            b.append_value(v);
        }
    }
    #[inline]
    pub fn i32(&mut self, c: I32Col, v: i32) {
        if self.ready(c.0)
            && let Builder::I32(b) = &mut self.leaves[c.0].builder
        {
            b.append_value(v);
        }
    }
    #[inline]
    pub fn i64(&mut self, c: I64Col, v: i64) {
        if self.ready(c.0)
            && let Builder::I64(b) = &mut self.leaves[c.0].builder
        {
            b.append_value(v);
        }
    }
    #[inline]
    pub fn f64(&mut self, c: F64Col, v: f64) {
        if self.ready(c.0)
            && let Builder::F64(b) = &mut self.leaves[c.0].builder
        {
            b.append_value(v);
        }
    }
    #[inline]
    pub fn bool(&mut self, c: BoolCol, v: bool) {
        if self.ready(c.0)
            && let Builder::Bool(b) = &mut self.leaves[c.0].builder
        {
            b.append_value(v);
        }
    }
    #[inline]
    pub fn ts(&mut self, c: TsCol, epoch_ms: i64) {
        if self.ready(c.0)
            && let Builder::Ts(b, _) = &mut self.leaves[c.0].builder
        {
            b.append_value(epoch_ms);
        }
    }

    /// Opens one item of a list in the current row (or current item of the enclosing list).
    pub fn begin_item(&mut self, c: ListCol) {
        let l = &mut self.lists[c.0];
        let at = self.cursor[l.parent];
        if l.counts.len() <= at {
            l.counts.resize(at + 1, 0);
        }
        l.counts[at] += 1;
    }

    /// Closes the item opened by [`BatchWriter::begin_item`].
    pub fn end_item(&mut self, c: ListCol) {
        let own = self.lists[c.0].own;
        self.cursor[own] += 1;
    }

    /// Appends one string to a list of strings (`metadata.profiles`).
    pub fn push_str(&mut self, c: ListCol, v: &str) {
        let Some(Slot::Leaf(leaf)) = self.item_leaf(c) else { return };
        self.begin_item(c);
        self.str(StrCol(leaf), v);
        self.end_item(c);
    }

    fn item_leaf(&self, c: ListCol) -> Option<Slot> {
        let own = self.lists[c.0].own;
        self.leaves.iter().position(|l| l.domain == own).map(Slot::Leaf)
    }

    /// Finishes the current row.
    pub fn end_row(&mut self) {
        self.cursor[0] += 1;
    }

    /// Drops whatever was written for the current, unfinished row (a normalizer that finds the
    /// event bad half-way calls this before dead-lettering it).
    pub fn discard_row(&mut self) {
        // Items of lists opened in this row are kept in their domains but unreferenced; only
        // the counts for this row and the scalar leaves set in it need undoing.
        let row = self.cursor[0];
        for i in 0..self.lists.len() {
            if self.lists[i].parent == 0 && self.lists[i].counts.len() > row {
                self.truncate_list(i, row);
            }
        }
        for l in &mut self.leaves {
            if l.domain == 0 && l.builder.len() > row {
                truncate(&mut l.builder, row);
            }
        }
    }

    fn truncate_list(&mut self, list: usize, parent_len: usize) {
        let l = &mut self.lists[list];
        let keep: i32 = l.counts[..parent_len].iter().sum();
        l.counts.truncate(parent_len);
        let own = l.own;
        self.cursor[own] = keep as usize;
        for i in 0..self.lists.len() {
            if self.lists[i].parent == own && self.lists[i].counts.len() > keep as usize {
                self.truncate_list(i, keep as usize);
            }
        }
        for l in &mut self.leaves {
            if l.domain == own && l.builder.len() > keep as usize {
                truncate(&mut l.builder, keep as usize);
            }
        }
    }

    /// Builds the batch of all finished rows and resets the writer for the next one.
    pub fn finish(&mut self) -> Result<RecordBatch, WriterError> {
        let rows = self.cursor[0];
        self.discard_row();
        let shapes = std::mem::take(&mut self.shapes);
        let columns: Result<Vec<ArrayRef>, WriterError> = shapes.iter().map(|s| self.build(s, rows)).collect();
        self.shapes = shapes;
        self.cursor.iter_mut().for_each(|c| *c = 0);
        self.lists.iter_mut().for_each(|l| l.counts.clear());
        let columns = columns?;
        Ok(RecordBatch::try_new_with_options(self.schema.clone(), columns, &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)))?)
    }

    fn build(&mut self, shape: &Shape, len: usize) -> Result<ArrayRef, WriterError> {
        Ok(match shape {
            Shape::Leaf(i) => {
                let b = &mut self.leaves[*i].builder;
                if b.len() < len {
                    b.append_nulls(len - b.len());
                }
                b.finish()
            }
            Shape::Struct(fields, children) => {
                let arrays = children.iter().map(|c| self.build(c, len)).collect::<Result<Vec<_>, _>>()?;
                let nulls = any_valid(&arrays, len);
                Arc::new(StructArray::try_new(fields.clone(), arrays, nulls)?)
            }
            Shape::List(item, list, inner) => {
                let mut counts = std::mem::take(&mut self.lists[*list].counts);
                counts.resize(len, 0);
                let items: usize = counts.iter().map(|c| *c as usize).sum();
                let values = self.build(inner, items)?;
                let valid = NullBuffer::new(BooleanBuffer::collect_bool(len, |i| counts[i] > 0));
                let offsets = OffsetBuffer::from_lengths(counts.iter().map(|c| *c as usize));
                Arc::new(ListArray::try_new(item.clone(), offsets, values, Some(valid))?)
            }
        })
    }
}

/// A struct is valid where at least one child is.
fn any_valid(children: &[ArrayRef], len: usize) -> Option<NullBuffer> {
    let mut acc: Option<BooleanBuffer> = None;
    for c in children {
        match c.logical_nulls() {
            None => return None,
            Some(n) => {
                acc = Some(match acc {
                    None => n.inner().clone(),
                    Some(a) => &a | n.inner(),
                })
            }
        }
    }
    Some(NullBuffer::new(acc.unwrap_or_else(|| BooleanBuffer::new_unset(len))))
}

/// Cuts a builder back to `len` values (rare: only when a half-written row is discarded).
fn truncate(b: &mut Builder, len: usize) {
    let arr = b.finish();
    let kept = arr.slice(0, len);
    match b {
        Builder::Str(s) => {
            let a = kept.as_any().downcast_ref::<arrow::array::StringArray>().unwrap();
            a.iter().for_each(|v| s.append_option(v));
        }
        Builder::I32(s) => kept.as_any().downcast_ref::<arrow::array::Int32Array>().unwrap().iter().for_each(|v| s.append_option(v)),
        Builder::I64(s) => kept.as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().iter().for_each(|v| s.append_option(v)),
        Builder::F64(s) => kept.as_any().downcast_ref::<arrow::array::Float64Array>().unwrap().iter().for_each(|v| s.append_option(v)),
        Builder::Bool(s) => kept.as_any().downcast_ref::<arrow::array::BooleanArray>().unwrap().iter().for_each(|v| s.append_option(v)),
        Builder::Ts(s, _) => kept.as_any().downcast_ref::<arrow::array::TimestampMillisecondArray>().unwrap().iter().for_each(|v| s.append_option(v)),
    }
}

impl Builder {
    fn finish_type(&self) -> DataType {
        match self {
            Builder::Str(_) => DataType::Utf8,
            Builder::I32(_) => DataType::Int32,
            Builder::I64(_) => DataType::Int64,
            Builder::F64(_) => DataType::Float64,
            Builder::Bool(_) => DataType::Boolean,
            Builder::Ts(_, tz) => DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, tz.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::{Field, Int32Type, Schema};

    fn schema() -> SchemaRef {
        let user = Fields::from(vec![Field::new("name", DataType::Utf8, true), Field::new("uid", DataType::Utf8, true)]);
        let actor = Fields::from(vec![Field::new("user", DataType::Struct(user), true)]);
        let res = Fields::from(vec![Field::new("uid", DataType::Utf8, true), Field::new("type", DataType::Utf8, true)]);
        Arc::new(Schema::new(vec![
            Field::new("class_uid", DataType::Int32, true),
            Field::new("actor", DataType::Struct(actor), true),
            Field::new("resources", DataType::List(Arc::new(Field::new("item", DataType::Struct(res), true))), true),
            Field::new("labels", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
        ]))
    }

    #[test]
    fn writes_nested_rows_with_lazy_nulls() {
        let mut w = BatchWriter::new(schema()).unwrap();
        let class = w.i32_col("class_uid").unwrap();
        let name = w.str_col("actor.user.name").unwrap();
        let res = w.list_col("resources").unwrap();
        let res_uid = w.str_col("resources.uid").unwrap();
        let labels = w.list_col("labels").unwrap();
        assert!(matches!(w.i32_col("actor.user.name"), Err(WriterError::WrongType(..))));
        assert!(matches!(w.str_col("actor.user.shoe"), Err(WriterError::NoColumn(_))));

        // row 0: everything
        w.i32(class, 6003);
        w.str(name, "alice");
        for uid in ["r1", "r2"] {
            w.begin_item(res);
            w.str(res_uid, uid);
            w.end_item(res);
        }
        w.push_str(labels, "agent");
        w.end_row();
        // row 1: nothing but the class
        w.i32(class, 3002);
        w.end_row();
        // row 2: a half-written row that gets discarded
        w.str(name, "mallory");
        w.begin_item(res);
        w.str(res_uid, "bad");
        w.end_item(res);
        w.discard_row();
        // row 2 again
        w.begin_item(res);
        w.str(res_uid, "r3");
        w.end_item(res);
        w.end_row();

        let b = w.finish().unwrap();
        assert_eq!(b.num_rows(), 3);
        assert_eq!(b.column(0).as_primitive::<Int32Type>().values().to_vec(), vec![6003, 3002, 0]);
        assert!(b.column(0).is_null(2));
        let actor = b.column(1).as_struct();
        assert!(actor.is_valid(0) && actor.is_null(1) && actor.is_null(2), "struct null where nothing set");
        assert_eq!(actor.column(0).as_struct().column(0).as_string::<i32>().value(0), "alice");
        let res = b.column(2).as_list::<i32>();
        assert_eq!(res.value_offsets(), &[0, 2, 2, 3]);
        assert!(res.is_null(1));
        let uids = res.values().as_struct().column(0).as_string::<i32>().clone();
        assert_eq!(uids.iter().collect::<Vec<_>>(), vec![Some("r1"), Some("r2"), Some("r3")]);
        assert_eq!(b.column(3).as_list::<i32>().value(0).as_string::<i32>().value(0), "agent");

        // The writer is reusable after finish.
        w.i32(class, 1);
        w.end_row();
        let b = w.finish().unwrap();
        assert_eq!(b.num_rows(), 1);
        assert!(b.column(1).is_null(0));
    }

    #[test]
    fn setting_a_value_twice_keeps_the_first() {
        let mut w = BatchWriter::new(schema()).unwrap();
        let name = w.str_col("actor.user.name").unwrap();
        w.str(name, "first");
        w.str(name, "second");
        w.end_row();
        let b = w.finish().unwrap();
        let v = b.column(1).as_struct().column(0).as_struct().column(0).as_string::<i32>().value(0).to_string();
        assert_eq!(v, "first");
    }
}

//! The Flight SQL protocol over the engine: statements and prepared statements (the SQL text is
//! the handle, so the server keeps no per-client state), catalog metadata for BI tools, and the
//! handshake. Every call is authenticated first.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::FlightSqlService;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo,
    CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery, CommandStatementQuery, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage, SchemaAsIpc, Ticket};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::Auth;
use crate::query::{BatchStream, Engine};

/// The catalog and schema every table is in (DataFusion's defaults).
const CATALOG: &str = "datafusion";
const SCHEMA: &str = "public";

pub struct Service {
    pub auth: Arc<Auth>,
    pub engine: Arc<Engine>,
    pub info: Arc<SqlInfoData>,
}

impl Service {
    pub fn new(auth: Auth, engine: Engine) -> Service {
        let mut info = SqlInfoDataBuilder::new();
        info.append(SqlInfo::FlightSqlServerName, "ocelot");
        info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        info.append(SqlInfo::FlightSqlServerArrowVersion, "59");
        info.append(SqlInfo::FlightSqlServerReadOnly, true);
        Service { auth: Arc::new(auth), engine: Arc::new(engine), info: Arc::new(info.build().expect("static SqlInfo")) }
    }

    fn who<T>(&self, request: &Request<T>) -> Result<String, Status> {
        self.auth.check(request.metadata())
    }

    /// The FlightInfo of a query: its schema, and a ticket that carries the SQL back.
    async fn query_info(&self, sql: &str, descriptor: FlightDescriptor) -> Result<Response<FlightInfo>, Status> {
        let df = self.engine.plan(sql).await?;
        let ticket = TicketStatementQuery { statement_handle: sql.as_bytes().to_vec().into() };
        flight_info(df.schema().as_arrow(), ticket.as_any().encode_to_vec(), descriptor)
    }

    async fn run(&self, who: &str, sql: &str) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let (schema, batches) = self.engine.run(sql).await.inspect_err(|e| tracing::warn!(user = who, sql, error = %e.message(), "query refused"))?;
        let mut audit = Audit { who: who.to_string(), sql: sql.to_string(), rows: 0, started: Instant::now(), error: None };
        let batches = batches.map(move |item| {
            // The whole guard moves into the closure (not copies of its fields), so it logs when
            // the stream is dropped.
            let audit = &mut audit;
            match &item {
                Ok(b) => audit.rows += b.num_rows(),
                Err(e) => audit.error = Some(e.message().to_string()),
            }
            item
        });
        Ok(Response::new(encode(schema, Box::pin(batches))))
    }

    fn metadata_batch(&self, batch: RecordBatch) -> Response<<Self as FlightService>::DoGetStream> {
        let schema = batch.schema();
        Response::new(encode(schema, Box::pin(futures::stream::once(async { Ok(batch) }))))
    }
}

/// The audit line of a query, written when its stream ends (done, failed, cut off, or the
/// client went away): who ran what, rows sent, how long.
struct Audit {
    who: String,
    sql: String,
    rows: usize,
    started: Instant,
    error: Option<String>,
}

impl Drop for Audit {
    fn drop(&mut self) {
        let ms = self.started.elapsed().as_millis() as u64;
        match &self.error {
            None => tracing::info!(user = %self.who, sql = %self.sql, rows = self.rows, elapsed_ms = ms, "query"),
            Some(e) => tracing::warn!(user = %self.who, sql = %self.sql, rows = self.rows, elapsed_ms = ms, error = %e, "query failed"),
        }
    }
}

fn encode(schema: arrow::datatypes::SchemaRef, batches: BatchStream) -> Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>> {
    let stream = FlightDataEncoderBuilder::new().with_schema(schema).build(batches.map_err(FlightError::from)).map_err(|e| match e {
        FlightError::Tonic(status) => *status,
        other => Status::internal(other.to_string()),
    });
    Box::pin(stream)
}

fn flight_info(schema: &Schema, ticket: Vec<u8>, descriptor: FlightDescriptor) -> Result<Response<FlightInfo>, Status> {
    let info =
        FlightInfo::new().try_with_schema(schema).map_err(|e| Status::internal(e.to_string()))?.with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket))).with_descriptor(descriptor);
    Ok(Response::new(info))
}

fn sql_of(handle: &[u8]) -> Result<&str, Status> {
    std::str::from_utf8(handle).map_err(|_| Status::invalid_argument("the statement handle is not a query this server made"))
}

#[tonic::async_trait]
impl FlightSqlService for Service {
    type FlightService = Service;

    async fn do_handshake(&self, request: Request<Streaming<HandshakeRequest>>) -> Result<Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>, Status> {
        let token = self.auth.handshake(request.metadata())?;
        let reply = HandshakeResponse { protocol_version: 0, payload: token.clone().into_bytes().into() };
        let mut response: Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>> = Response::new(Box::pin(futures::stream::once(async { Ok(reply) })));
        response.metadata_mut().insert("authorization", format!("Bearer {token}").parse().map_err(|_| Status::internal("token header"))?);
        Ok(response)
    }

    async fn get_flight_info_statement(&self, query: CommandStatementQuery, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        self.query_info(&query.query, request.into_inner()).await
    }

    async fn do_get_statement(&self, ticket: TicketStatementQuery, request: Request<Ticket>) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let who = self.who(&request)?;
        self.run(&who, sql_of(&ticket.statement_handle)?).await
    }

    async fn do_action_create_prepared_statement(&self, query: ActionCreatePreparedStatementRequest, request: Request<Action>) -> Result<ActionCreatePreparedStatementResult, Status> {
        self.who(&request)?;
        let df = self.engine.plan(&query.query).await?;
        let IpcMessage(dataset_schema) = SchemaAsIpc::new(df.schema().as_arrow(), &Default::default()).try_into().map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
        Ok(ActionCreatePreparedStatementResult { prepared_statement_handle: query.query.into_bytes().into(), dataset_schema, parameter_schema: Default::default() })
    }

    async fn do_action_close_prepared_statement(&self, _query: ActionClosePreparedStatementRequest, request: Request<Action>) -> Result<(), Status> {
        // Nothing is kept per statement.
        self.who(&request)?;
        Ok(())
    }

    async fn get_flight_info_prepared_statement(&self, cmd: CommandPreparedStatementQuery, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        let sql = sql_of(&cmd.prepared_statement_handle)?.to_string();
        self.query_info(&sql, request.into_inner()).await
    }

    async fn do_get_prepared_statement(&self, cmd: CommandPreparedStatementQuery, request: Request<Ticket>) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let who = self.who(&request)?;
        self.run(&who, sql_of(&cmd.prepared_statement_handle)?).await
    }

    async fn get_flight_info_catalogs(&self, query: CommandGetCatalogs, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        flight_info(&query.into_builder().schema(), query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_catalogs(&self, query: CommandGetCatalogs, request: Request<Ticket>) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        let mut b = query.into_builder();
        b.append(CATALOG);
        Ok(self.metadata_batch(b.build().map_err(|e| Status::internal(e.to_string()))?))
    }

    async fn get_flight_info_schemas(&self, query: CommandGetDbSchemas, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        flight_info(&query.clone().into_builder().schema(), query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_schemas(&self, query: CommandGetDbSchemas, request: Request<Ticket>) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        let mut b = query.into_builder();
        b.append(CATALOG, SCHEMA);
        Ok(self.metadata_batch(b.build().map_err(|e| Status::internal(e.to_string()))?))
    }

    async fn get_flight_info_tables(&self, query: CommandGetTables, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        flight_info(&query.clone().into_builder().schema(), query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_tables(&self, query: CommandGetTables, request: Request<Ticket>) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        let mut b = query.into_builder();
        for (name, kind, schema) in self.engine.tables().await? {
            b.append(CATALOG, SCHEMA, name, kind, &schema).map_err(|e| Status::internal(e.to_string()))?;
        }
        Ok(self.metadata_batch(b.build().map_err(|e| Status::internal(e.to_string()))?))
    }

    async fn get_flight_info_table_types(&self, query: CommandGetTableTypes, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        flight_info(&table_types()?.schema(), query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_table_types(&self, _query: CommandGetTableTypes, request: Request<Ticket>) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        Ok(self.metadata_batch(table_types()?))
    }

    async fn get_flight_info_sql_info(&self, query: CommandGetSqlInfo, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        flight_info(&query.clone().into_builder(&self.info).schema(), query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_sql_info(&self, query: CommandGetSqlInfo, request: Request<Ticket>) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        Ok(self.metadata_batch(query.into_builder(&self.info).build().map_err(|e| Status::internal(e.to_string()))?))
    }

    async fn do_get_fallback(&self, request: Request<Ticket>, message: Any) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        Err(Status::unimplemented(format!("{} is not served here (read-only Flight SQL: statements, prepared statements, catalogs, schemas, tables)", message.type_url)))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

fn table_types() -> Result<RecordBatch, Status> {
    let types = arrow::array::StringArray::from(vec!["TABLE", "VIEW"]);
    RecordBatch::try_from_iter([("table_type", Arc::new(types) as arrow::array::ArrayRef)]).map_err(|e| Status::internal(e.to_string()))
}

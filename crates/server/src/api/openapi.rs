//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "herald", description = "Durable sagas between microservices, told honestly and live to the end user."),
    paths(
        super::operations::start,
        super::operations::get,
        super::operations::list,
        super::operations::mine,
        super::operations::action,
        super::events::stream,
        super::steps::complete,
        super::inbox::list,
        super::inbox::read_one,
        super::inbox::read_all,
        super::inbox::stream,
        super::admin::dead_letters,
        super::workflows::list,
        super::workflows::get,
    ),
    components(schemas(super::views::OperationRef)),
    tags((name = "operations"), (name = "steps"), (name = "workflows"), (name = "inbox"), (name = "admin"))
)]
struct Doc;

pub fn document() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

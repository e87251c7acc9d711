//! The OpenAPI 3.1 document, generated from the handlers' annotations,
//! with what every operation shares added by [`shared`].

mod shared;

use shared::SharedAnswers;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "herald", description = "Durable sagas between microservices, told honestly and live to the end user."),
    paths(
        super::operations::start,
        super::operations::get,
        super::operations::list,
        super::operations::mine,
        super::operations::cancel,
        super::operations::resolve,
        super::events::stream,
        super::steps::complete,
        super::inbox::list,
        super::inbox::read_one,
        super::inbox::read_all,
        super::inbox::stream,
        super::services::register,
        super::services::deregister,
        super::services::list,
        super::topics::publish,
        super::subscriptions::put,
        super::subscriptions::list,
        super::subscriptions::get,
        super::subscriptions::delete,
        super::subscriptions::pull,
        super::subscriptions::ack,
        super::subscriptions::nack,
        super::dead_letters::list,
        super::dead_letters::get,
        super::dead_letters::delete,
        super::dead_letters::action,
        super::dead_letters::bulk,
        super::workflows::list,
        super::workflows::get,
        super::ui::clock,
        super::ui::lag,
    ),
    components(schemas(super::views::OperationRef)),
    modifiers(&SharedAnswers),
    tags((name = "operations"), (name = "steps"), (name = "workflows"), (name = "inbox"), (name = "topics"), (name = "services"), (name = "admin"), (name = "ui"))
)]
struct Doc;

pub fn document() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

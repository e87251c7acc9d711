//! What every operation of the document shares, written once here rather
//! than in each handler's annotation, where one would be forgotten:
//!
//! - the answers that come from the layers and extractors all routes go
//!   through (the token, the body reader, the store), not from the handler;
//! - every error answer as herald sends it: a problem document
//!   (`application/problem+json`, `herald_http::problem`);
//! - a description for every answer, which OpenAPI requires;
//! - a body or parameter that may be left out is left out, never `null`.

use utoipa::{
    Modify,
    openapi::{
        Content, HeaderBuilder, OpenApi, PathItem, Ref, RefOr, Required, Response, Schema,
        path::{Operation, Parameter, ParameterIn},
        schema::{ObjectBuilder, SchemaType, Type},
    },
};

const PROBLEM: &str = "application/problem+json";

pub struct SharedAnswers;

impl Modify for SharedAnswers {
    fn modify(&self, doc: &mut OpenApi) {
        for item in doc.paths.paths.values_mut() {
            for (changes, op) in operations(item) {
                for (status, description) in shared(changes, op) {
                    let answer = Response::new(description);
                    op.responses.responses.entry(status.to_string()).or_insert(RefOr::T(answer));
                }
                for (status, answer) in op.responses.responses.iter_mut() {
                    let RefOr::T(answer) = answer else { continue };
                    if answer.description.is_empty() {
                        answer.description = reason(status).into();
                    }
                    if status.starts_with('4') || status.starts_with('5') {
                        as_problem(status, answer);
                    }
                }
                for param in op.parameters.iter_mut().flatten() {
                    if let RefOr::T(Parameter {
                        parameter_in: ParameterIn::Query | ParameterIn::Header, schema, ..
                    }) = param
                        && let Some(schema) = schema
                    {
                        not_null(schema);
                    }
                }
                if let Some(RefOr::T(body)) = &mut op.request_body
                    && body.required != Some(Required::True)
                {
                    for content in body.content.values_mut() {
                        if let RefOr::T(Content { schema: Some(schema), .. }) = content {
                            not_null(schema);
                        }
                    }
                }
            }
        }
    }
}

/// Each operation of a path, and whether its method sends a body (POST, PUT).
fn operations(item: &mut PathItem) -> impl Iterator<Item = (bool, &mut Operation)> {
    let reads = [&mut item.get, &mut item.delete].into_iter().map(|op| (false, op));
    let changes = [&mut item.post, &mut item.put].into_iter().map(|op| (true, op));
    reads.chain(changes).filter_map(|(changes, op)| op.as_mut().map(|op| (changes, op)))
}

/// The answers `op` may give whatever its handler does.
fn shared(changes: bool, op: &Operation) -> Vec<(u16, &'static str)> {
    let mut answers = vec![
        (401, "no token, or one herald does not take"),
        (
            403,
            "the token may not do this (or, while herald takes callers without a token, a page of another site asked)",
        ),
        (503, "the store does not answer (`Retry-After` says when to try again), or herald is stopping"),
    ];
    let in_path =
        op.parameters.iter().flatten().any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Path));
    let body = op.request_body.is_some();
    match (in_path, body) {
        (true, true) => answers.push((400, "a path parameter is not UTF-8, or the body is not JSON")),
        (true, false) => answers.push((400, "a path parameter is not UTF-8")),
        (false, true) => answers.push((400, "the body is not JSON")),
        (false, false) => {}
    }
    if in_path {
        answers.push((404, "no such resource"));
    }
    if changes {
        // Every POST and PUT says it is JSON, body or not (`body::json_only`).
        answers.push((415, "the content type is not JSON"));
    }
    if body {
        answers.push((413, "the body is larger than `limits.max_body_bytes`"));
        answers.push((422, "the body is not one this operation takes"));
    }
    answers
}

/// A response must have a description: the status's reason phrase, where
/// the annotation gave none.
fn reason(status: &str) -> &'static str {
    let code = status.parse().ok().and_then(|n| axum::http::StatusCode::from_u16(n).ok());
    code.and_then(|c| c.canonical_reason()).unwrap_or("answer")
}

/// An error answer as herald sends it, with the headers that go with it.
fn as_problem(status: &str, answer: &mut Response) {
    let schema = RefOr::Ref(Ref::from_schema_name("Problem"));
    answer.content.clear();
    answer.content.insert(PROBLEM.into(), RefOr::T(Content::new(Some(schema))));
    let integer = || ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).build();
    match status {
        "401" => {
            let challenge = HeaderBuilder::new().description(Some("`Bearer`")).build();
            answer.headers.insert("WWW-Authenticate".into(), RefOr::T(challenge));
        }
        "429" | "503" => {
            let wait = HeaderBuilder::new().schema(Some(integer())).description(Some("seconds to wait")).build();
            answer.headers.insert("Retry-After".into(), RefOr::T(wait));
        }
        _ => {}
    }
}

/// `T or null` (utoipa's reading of an `Option<T>`) as `T`, for a body or
/// a query or header parameter: one that may be left out is absent, and
/// `null` is not a `T`.
fn not_null(schema: &mut RefOr<Schema>) {
    match schema {
        RefOr::T(Schema::OneOf(one)) => {
            if let [item, RefOr::T(Schema::Object(null))] = one.items.as_slice()
                && null.schema_type == SchemaType::Type(Type::Null)
            {
                *schema = item.clone();
            }
        }
        RefOr::T(Schema::Object(object)) => {
            if let SchemaType::Array(types) = &object.schema_type
                && let [one, Type::Null] = types.as_slice()
            {
                object.schema_type = SchemaType::Type(one.clone());
            }
        }
        _ => {}
    }
}

//! Who is calling: access tokens checked against the workspace's secret. The HTTP endpoints
//! take [`Authenticated`], an extractor whose refusal is the JSON error; a room's WebSocket
//! upgrade uses [`editor_claims`], because a refusal there must still complete the handshake
//! (the client then sees a 44xx close code; an HTTP error would make it retry forever).

use crate::multiplayer::protocol::close::{self, Close};
use crate::multiplayer::server::context::Context;
use crate::multiplayer::server::reply::json_error;
use crate::multiplayer::token::{self, Claims, TokenError};
use axum::extract::{FromRef, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::Response;
use std::collections::HashMap;
use std::sync::Arc;

fn verify(ctx: &Context, token: &str) -> Result<Claims, TokenError> {
    token::verify(
        token,
        ctx.config.secret.bytes(),
        ctx.config.workspace.as_str(),
        token::now_unix(),
    )
}

/// The claims of a valid token for this workspace, given as `Authorization: Bearer <token>` or
/// `?token=`. Refused with 401 (no token, or a bad one) or 403 (another workspace's).
#[derive(Debug)]
pub struct Authenticated(pub Claims);

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    Arc<Context>: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let ctx = Arc::<Context>::from_ref(state);
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let Some(t) = bearer.or_else(|| query_token(parts)) else {
            return Err(json_error(
                StatusCode::UNAUTHORIZED,
                "a token is required (Authorization: Bearer <token>)",
            ));
        };
        match verify(&ctx, &t) {
            Ok(claims) => Ok(Authenticated(claims)),
            Err(TokenError::WrongWorkspace) => Err(json_error(
                StatusCode::FORBIDDEN,
                "token is not for this workspace",
            )),
            Err(e) => Err(json_error(StatusCode::UNAUTHORIZED, &e.to_string())),
        }
    }
}

fn query_token(parts: &Parts) -> Option<String> {
    let Query(mut q) = Query::<HashMap<String, String>>::try_from_uri(&parts.uri).ok()?;
    q.remove("token")
}

/// An editor joining a room: the claims of its token, or the close code that refuses it, and
/// the subprotocol to echo. The client should offer the token as a subprotocol (one of
/// `offered`); `?token=` works too. The echoed protocol is the one that carried the token, else
/// the first offered, since a client that offered protocols fails the handshake when none is
/// selected.
pub fn editor_claims(
    ctx: &Context,
    offered: &[String],
    query_token: Option<&String>,
) -> (Result<Claims, Close>, Option<String>) {
    let from_protocol = offered.iter().find(|p| token::looks_like_token(p));
    let claims = match from_protocol.or(query_token) {
        None => Err(close::BAD_TOKEN),
        Some(t) => verify(ctx, t).map_err(|e| match e {
            TokenError::WrongWorkspace => close::FORBIDDEN,
            _ => close::BAD_TOKEN,
        }),
    };
    let echo = from_protocol.or_else(|| offered.first()).cloned();
    (claims, echo)
}

//! Accounts, for admins only: the console's users (add, delete) and the
//! REST API's bearer tokens (create, shown once; revoke).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::http::AppState;
use crate::inventory::{AccountError, Role, TokenRow, UserRow};
use crate::web::auth::Admin;
use crate::web::csrf::CsrfForm;
use crate::web::display::time;
use crate::web::events::Choice;
use crate::web::layout::Layout;
use crate::web::units::EmptyForm;
use crate::web::{Params, WebError, render, see_other, sentence};

/// A user as listed.
#[derive(Debug, Clone)]
pub struct UserView {
    name: String,
    role: &'static str,
    created: String,
    /// The one viewing the page.
    me: bool,
}

/// The new-user form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

/// The users page.
#[derive(Template)]
#[template(path = "users.html")]
pub struct UsersPage {
    layout: Layout,
    users: Vec<UserView>,
    name: String,
    roles: Vec<Choice>,
    error: Option<String>,
}

fn users_page(
    me: &crate::web::auth::CurrentUser,
    users: Vec<UserRow>,
    form: &UserForm,
    error: Option<String>,
) -> UsersPage {
    let role = if form.role.is_empty() {
        "viewer"
    } else {
        form.role.as_str()
    };
    UsersPage {
        layout: Layout::page(me, "Users", "users"),
        users: users
            .into_iter()
            .map(|u| UserView {
                me: u.name == me.name,
                role: u.role.as_str(),
                created: time(u.created_at),
                name: u.name,
            })
            .collect(),
        name: form.name.clone(),
        roles: [Role::Viewer, Role::Admin]
            .iter()
            .map(|r| Choice {
                value: r.as_str().to_owned(),
                label: r.as_str().to_owned(),
                selected: r.as_str() == role,
            })
            .collect(),
        error,
    }
}

/// GET /users.
pub async fn users(
    State(state): State<AppState>,
    Admin(user): Admin,
) -> Result<Response, WebError> {
    let users = state.ops.inventory().users().await?;
    Ok(render(
        StatusCode::OK,
        &users_page(&user, users, &UserForm::default(), None),
    ))
}

fn account_refusal(e: AccountError) -> Result<(StatusCode, String), WebError> {
    let status = match e {
        AccountError::Inventory(e) => return Err(e.into()),
        AccountError::Hash(m) => return Err(WebError::Internal(m)),
        AccountError::NoSuchUser(_) => StatusCode::NOT_FOUND,
        AccountError::Exists(_) | AccountError::LastAdmin(_) => StatusCode::CONFLICT,
        AccountError::BadName | AccountError::BadPassword => StatusCode::UNPROCESSABLE_ENTITY,
    };
    Ok((status, sentence(&e.to_string())))
}

/// POST /users: add a user.
pub async fn add_user(
    State(state): State<AppState>,
    Admin(user): Admin,
    CsrfForm(form): CsrfForm<UserForm>,
) -> Result<Response, WebError> {
    let inventory = state.ops.inventory();
    let outcome = match Role::parse(&form.role) {
        None => Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose a role: admin or viewer.".to_owned(),
        )),
        Some(role) => match inventory
            .add_user(form.name.trim(), &form.password, role)
            .await
        {
            Ok(added) => {
                tracing::info!(user = %added.name, role = %added.role, by = %user.name, "user added");
                Ok(())
            }
            Err(e) => Err(account_refusal(e)?),
        },
    };
    match outcome {
        Ok(()) => Ok(see_other("/users")),
        Err((status, message)) => {
            let users = inventory.users().await?;
            Ok(render(
                status,
                &users_page(&user, users, &form, Some(message)),
            ))
        }
    }
}

/// POST /users/{name}/delete.
pub async fn delete_user(
    State(state): State<AppState>,
    Admin(user): Admin,
    Params(name): Params<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<Response, WebError> {
    let inventory = state.ops.inventory();
    match inventory.delete_user(&name).await {
        Ok(()) => {
            tracing::info!(user = %name, by = %user.name, "user deleted");
            Ok(see_other("/users"))
        }
        Err(e) => {
            let (status, message) = account_refusal(e)?;
            let users = inventory.users().await?;
            Ok(render(
                status,
                &users_page(&user, users, &UserForm::default(), Some(message)),
            ))
        }
    }
}

/// A token as listed.
#[derive(Debug, Clone)]
pub struct TokenView {
    id: String,
    name: String,
    created: String,
    last_used: String,
}

impl TokenView {
    fn of(t: TokenRow) -> TokenView {
        TokenView {
            id: t.id,
            name: t.name,
            created: time(t.created_at),
            last_used: t.last_used.map_or_else(|| "never".to_owned(), time),
        }
    }
}

/// The tokens page.
#[derive(Template)]
#[template(path = "tokens.html")]
pub struct TokensPage {
    layout: Layout,
    tokens: Vec<TokenView>,
    /// A token just created: its bearer string, shown this once.
    created: Option<(String, String)>,
    name: String,
    error: Option<String>,
}

async fn tokens_page(
    state: &AppState,
    user: &crate::web::auth::CurrentUser,
    created: Option<(String, String)>,
    name: String,
    error: Option<String>,
) -> Result<TokensPage, WebError> {
    let tokens = state.ops.inventory().tokens().await?;
    Ok(TokensPage {
        layout: Layout::page(user, "API tokens", "tokens"),
        tokens: tokens.into_iter().map(TokenView::of).collect(),
        created,
        name,
        error,
    })
}

/// GET /tokens.
pub async fn tokens(
    State(state): State<AppState>,
    Admin(user): Admin,
) -> Result<Response, WebError> {
    let page = tokens_page(&state, &user, None, String::new(), None).await?;
    Ok(render(StatusCode::OK, &page))
}

/// The new-token form.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
}

/// POST /tokens: create one and show its secret once.
pub async fn create_token(
    State(state): State<AppState>,
    Admin(user): Admin,
    CsrfForm(form): CsrfForm<TokenForm>,
) -> Result<Response, WebError> {
    let name = form.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        let page = tokens_page(
            &state,
            &user,
            None,
            name,
            Some("Name the token (1 to 64 characters) after what will use it.".to_owned()),
        )
        .await?;
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let (row, bearer) = state.ops.inventory().create_token(&name).await?;
    tracing::info!(token = %row.id, name = %row.name, by = %user.name, "API token created");
    let page = tokens_page(&state, &user, Some((row.name, bearer)), String::new(), None).await?;
    Ok(render(StatusCode::CREATED, &page))
}

/// POST /tokens/{id}/revoke.
pub async fn revoke_token(
    State(state): State<AppState>,
    Admin(user): Admin,
    Params(id): Params<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<Response, WebError> {
    if state.ops.inventory().revoke_token(&id).await? {
        tracing::info!(token = %id, by = %user.name, "API token revoked");
        Ok(see_other("/tokens"))
    } else {
        Err(WebError::NotFound(format!("No API token {id}.")))
    }
}

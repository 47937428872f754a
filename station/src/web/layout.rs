//! What every page's frame needs: its title, the navigation entry it
//! belongs to, the person logged in (for the menu and the logout form) and
//! their CSRF token, and whether the page refreshes itself.

use crate::inventory::Role;
use crate::web::auth::CurrentUser;

/// The navigation entries, in menu order: (key, label, path, admin only).
pub const NAV: &[(&str, &str, &str, bool)] = &[
    ("dashboard", "Dashboard", "/", false),
    ("units", "Units", "/units", false),
    ("volumes", "Volumes", "/volumes", false),
    ("clients", "Clients", "/clients", false),
    ("events", "Events", "/events", false),
    ("users", "Users", "/users", true),
    ("tokens", "API tokens", "/tokens", true),
];

/// One menu entry as shown.
#[derive(Debug, Clone)]
pub struct NavEntry {
    /// Its label.
    pub label: &'static str,
    /// Where it goes.
    pub path: &'static str,
    /// Whether the page shown is this entry's.
    pub current: bool,
}

/// The frame of a page.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The page's title (also the `<h1>` unless the page has its own).
    pub title: String,
    /// Who is logged in; none on the login and error pages.
    pub user: Option<String>,
    /// Their role.
    pub role: Option<Role>,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
    /// The menu.
    pub nav: Vec<NavEntry>,
    /// Seconds between automatic reloads (meta refresh), when the page
    /// watches something live.
    pub refresh: Option<u32>,
}

impl Layout {
    /// A frame with no menu (login, errors).
    pub fn bare(title: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            user: None,
            role: None,
            csrf: String::new(),
            nav: Vec::new(),
            refresh: None,
        }
    }

    /// The frame of a page under menu entry `nav`, for `user`.
    pub fn page(user: &CurrentUser, title: impl Into<String>, nav: &str) -> Layout {
        let admin = user.role == Role::Admin;
        Layout {
            title: title.into(),
            user: Some(user.name.clone()),
            role: Some(user.role),
            csrf: user.csrf.clone(),
            nav: NAV
                .iter()
                .filter(|(_, _, _, admin_only)| admin || !admin_only)
                .map(|&(key, label, path, _)| NavEntry {
                    label,
                    path,
                    current: key == nav,
                })
                .collect(),
            refresh: None,
        }
    }

    /// The same frame, reloading itself every `seconds`.
    pub fn refreshing(mut self, seconds: u32) -> Layout {
        self.refresh = Some(seconds);
        self
    }

    /// Whether the person may change things (forms are shown).
    pub fn is_admin(&self) -> bool {
        self.role == Some(Role::Admin)
    }

    /// The role's label.
    pub fn role_label(&self) -> &'static str {
        self.role.map_or("", Role::as_str)
    }
}

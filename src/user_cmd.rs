//! `dvsan station user add NAME`: adds a web console user to the station's
//! inventory (the first admin, or anyone while the console is out of
//! reach). The password comes from standard input (`--password-stdin`) or
//! is made up and printed once.

use std::io::BufRead;

use anyhow::Context;
use clap::{Args, Subcommand};
use dvsan_station::Inventory;
use dvsan_station::inventory::{Role, random_token};

/// `dvsan station user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (the password is read from standard input with
    /// --password-stdin, else made up and printed once).
    Add(UserAdd),
}

/// `dvsan station user add`.
#[derive(Debug, Args)]
pub struct UserAdd {
    /// Login name: 1 to 32 of letters, digits, '.', '_' and '-'
    pub name: String,
    /// admin (may change things) or viewer (may look)
    #[arg(long, default_value = "admin", value_parser = ["admin", "viewer"])]
    pub role: String,
    /// Read the password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
}

/// Runs `dvsan station user …` on the inventory at `db`.
pub async fn run(command: UserCommand, db: &str) -> anyhow::Result<()> {
    let UserCommand::Add(add) = command;
    crate::station_cmd::check_db(db)?;
    let role = Role::parse(&add.role).context("role: admin or viewer")?;
    let (password, made_up) = if add.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (random_token(12), true)
    };
    let inventory = Inventory::open(db)
        .await
        .with_context(|| format!("opening the inventory {db}"))?;
    let user = inventory
        .add_user(&add.name, &password, role)
        .await
        .with_context(|| format!("adding user {}", add.name))?;
    println!("added {} user {}", user.role, user.name);
    if made_up {
        println!("password: {password}");
    }
    Ok(())
}

//! `inoculab user ...`: the accounts that sign in to a shared server.

use std::io::BufRead;
use std::process::ExitCode;

use engine::accounts::{self, Role};

use crate::cli::UserCommand;

pub async fn run(
    data_dir: &std::path::Path,
    places: &crate::cli::Places,
    cmd: UserCommand,
) -> anyhow::Result<ExitCode> {
    let store = places.connect(data_dir).await?;
    match cmd {
        UserCommand::Add { name, role } => {
            let role = Role::parse(&role).ok_or_else(|| anyhow::anyhow!("--role is owner, editor or viewer"))?;
            accounts::add_user(&store, &name, &password()?, role).await?;
            println!("added {name} ({})", role.as_str());
        }
        UserCommand::List => {
            for u in accounts::users(&store).await? {
                println!("{}\t{}", u.name, u.role.as_str());
            }
        }
        UserCommand::Remove { name } => {
            accounts::remove_user(&store, &name).await?;
            println!("removed {name}");
        }
        UserCommand::Password { name } => {
            accounts::set_password(&store, &name, &password()?).await?;
            println!("set the password of {name}; their sessions have ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The first line of standard input, without its line ending.
fn password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    anyhow::ensure!(!password.is_empty(), "give the password on standard input (echo PASSWORD | inoculab user ...)");
    Ok(password)
}

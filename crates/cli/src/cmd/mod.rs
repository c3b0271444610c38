//! One module per command.

pub mod boards;
pub mod completions;
pub mod fastload;
pub mod image;
pub mod info;
pub mod list;
pub mod man;
pub mod maskrom;
pub mod run;
pub mod sim;
pub mod simulated;
pub mod storage;
pub mod transcript;
pub mod udev;

use crate::boards::{Board, Boards};
use crate::cli::GlobalArgs;
use crate::error::bad_input;

/// Loads the board table (built-in plus --boards).
pub fn load_boards(g: &GlobalArgs) -> anyhow::Result<Boards> {
    Ok(crate::boards::load(g.boards.as_deref())?)
}

/// Finds a board or fails with "did you mean".
pub fn find_board<'a>(boards: &'a Boards, name: &str) -> anyhow::Result<&'a Board> {
    boards.find(name).ok_or_else(|| {
        let s = boards.suggest(name);
        let hint = if s.is_empty() {
            "see `racklet-flash boards` for the list".to_string()
        } else {
            format!("did you mean {}?", s.iter().map(|x| format!("'{x}'")).collect::<Vec<_>>().join(" or "))
        };
        bad_input(format!("unknown board '{name}': {hint}"))
    })
}

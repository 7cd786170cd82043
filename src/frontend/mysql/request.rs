//! A client command, read once from its packet into a typed value that both
//! answering sides (`command` relaying to MySQL, `pg_primary` answering for
//! PostgreSQL) match on, instead of each switching on the first byte and
//! decoding statement ids again. Borrowed from the packet: no allocation.

use crate::wire::buf::Reader;
use crate::wire::cmd;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Command<'a> {
    /// A packet with no command byte.
    Empty,
    Quit,
    /// COM_QUERY and its SQL text (bytes as sent, any charset).
    Query(&'a [u8]),
    /// COM_STMT_PREPARE and its SQL text.
    Prepare(&'a [u8]),
    /// COM_STMT_EXECUTE; `None` when the id is missing.
    Execute(Option<u32>),
    Fetch,
    Reset(Option<u32>),
    Close(Option<u32>),
    /// COM_STMT_SEND_LONG_DATA: statement id and parameter index.
    LongData(Option<(u32, u16)>),
    ResetConnection,
    SetOption,
    ChangeUser,
    FieldList,
    ProcessInfo,
    /// COM_INIT_DB and the database name.
    InitDb(&'a [u8]),
    Ping,
    /// COM_REFRESH, COM_STATISTICS, COM_PROCESS_KILL, COM_DEBUG: relayed,
    /// answered with one packet.
    Simple(u8),
    /// Replication and anything else a proxy cannot pass on safely.
    Unsupported(u8),
}

impl<'a> Command<'a> {
    pub fn parse(payload: &'a [u8]) -> Self {
        let Some((&code, body)) = payload.split_first() else {
            return Command::Empty;
        };
        let id = || Reader::new(body).u32();
        match code {
            cmd::QUIT => Command::Quit,
            cmd::QUERY => Command::Query(body),
            cmd::STMT_PREPARE => Command::Prepare(body),
            cmd::STMT_EXECUTE => Command::Execute(id()),
            cmd::STMT_FETCH => Command::Fetch,
            cmd::STMT_RESET => Command::Reset(id()),
            cmd::STMT_CLOSE => Command::Close(id()),
            cmd::STMT_SEND_LONG_DATA => {
                let mut r = Reader::new(body);
                Command::LongData(r.u32().zip(r.u16()))
            }
            cmd::RESET_CONNECTION => Command::ResetConnection,
            cmd::SET_OPTION => Command::SetOption,
            cmd::CHANGE_USER => Command::ChangeUser,
            cmd::FIELD_LIST => Command::FieldList,
            cmd::PROCESS_INFO => Command::ProcessInfo,
            cmd::INIT_DB => Command::InitDb(body),
            cmd::PING => Command::Ping,
            cmd::REFRESH | cmd::STATISTICS | cmd::PROCESS_KILL | cmd::DEBUG => {
                Command::Simple(code)
            }
            other => Command::Unsupported(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read_once_into_values() {
        assert_eq!(Command::parse(&[]), Command::Empty);
        assert_eq!(Command::parse(&[cmd::QUIT]), Command::Quit);
        assert_eq!(Command::parse(b"\x03SELECT 1"), Command::Query(b"SELECT 1"));
        assert_eq!(
            Command::parse(b"\x16SELECT ?"),
            Command::Prepare(b"SELECT ?")
        );
        let mut exec = vec![cmd::STMT_EXECUTE];
        exec.extend_from_slice(&7u32.to_le_bytes());
        exec.extend_from_slice(&[0, 1, 0, 0, 0]);
        assert_eq!(Command::parse(&exec), Command::Execute(Some(7)));
        assert_eq!(
            Command::parse(&[cmd::STMT_EXECUTE, 1]),
            Command::Execute(None)
        );
        let mut long = vec![cmd::STMT_SEND_LONG_DATA];
        long.extend_from_slice(&9u32.to_le_bytes());
        long.extend_from_slice(&2u16.to_le_bytes());
        long.extend_from_slice(b"data");
        assert_eq!(Command::parse(&long), Command::LongData(Some((9, 2))));
        assert_eq!(Command::parse(b"\x02shop"), Command::InitDb(b"shop"));
        assert_eq!(
            Command::parse(&[cmd::STATISTICS]),
            Command::Simple(cmd::STATISTICS)
        );
        // COM_BINLOG_DUMP: refused, never relayed.
        assert_eq!(Command::parse(&[0x12, 0, 0]), Command::Unsupported(0x12));
    }
}

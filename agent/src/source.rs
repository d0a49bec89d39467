//! Where usage logs live and how one line of them becomes a request.
//!
//! A new agent (Gemini CLI, Cursor) is one more `Source`: discovery, a
//! per-file line parser, and whether its files can be resumed mid-way. The
//! index, the dedup, the outbox and the reports do not change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tally_core::claude::{parse_line, ClaudeLine};
use tally_core::codex::{session_id_from_file_name, CodexFile, CodexLine};
use tally_core::event::AgentKind;
use tally_core::opencode::OpenCodeMessage;
use tally_core::usage::TokenUsage;

use crate::home::user_home;

/// 128-bit event id (the first half of SHA-256 over agent and request ids),
/// the same value `tally_core::hash::event_id` renders as hex.
pub type EventId = [u8; 16];

pub fn event_id(agent: AgentKind, a: &str, b: &str) -> EventId {
    let hex = tally_core::hash::event_id(agent.as_str(), a, b);
    let mut out = [0u8; 16];
    // `event_id` always yields 32 lowercase hex characters.
    hex::decode_to_slice(hex, &mut out).expect("event_id is 32 hex chars");
    out
}

/// One request line, reduced to what the index and the outbox need.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: EventId,
    pub agent: AgentKind,
    pub ts: i64,
    pub model: String,
    pub usage: TokenUsage,
    pub fast: bool,
    pub session_id: String,
    pub cwd: String,
    /// The git branch the log line names ("" for none).
    pub branch: String,
    /// Identifies the line, so a line read twice does not repeat its text.
    pub line_tag: u64,
    /// Text is kept only when the request may ship in a mode that carries text.
    pub text: Option<Text>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Text {
    /// The user prompt this request answers (the file's latest prompt before it).
    pub prompt: Option<Arc<str>>,
    pub response: Option<String>,
    pub tools: Vec<String>,
}

pub enum Parsed {
    Request(Box<Request>),
    /// A user prompt: a later request answering it is a separate turn.
    Prompt,
    Skip,
    Malformed,
}

/// Parses the lines of one file, in order.
pub trait LineParser: Send {
    /// `want_text(ts)` says whether the text of a request at `ts` may be needed.
    fn line(&mut self, line: &[u8], want_text: &dyn Fn(i64) -> bool) -> Parsed;
}

pub trait Source: Send + Sync {
    fn kind(&self) -> AgentKind;
    /// Directories whose changes matter (for file watching).
    fn roots(&self) -> Vec<PathBuf>;
    /// Every log file, in a stable order.
    fn discover(&self) -> Vec<PathBuf>;
    /// True when lines are independent, so a file can be resumed at a byte
    /// offset; false when a line's meaning depends on all earlier ones.
    fn resumable(&self) -> bool;
    fn parser(&self, path: &Path) -> Box<dyn LineParser>;
    /// True when each file is one document, rewritten rather than appended
    /// (Gemini CLI chats, OpenCode messages): a changed file is read whole
    /// with [`Source::document`] instead of line by line.
    fn documents(&self) -> bool {
        false
    }
    /// Parses a whole file (only called when `documents()`).
    fn document(&self, _path: &Path, _bytes: &[u8]) -> Document {
        Document::default()
    }
    /// Reads a whole file (only called when `documents()`); a source whose
    /// file is not plain text (a database) reads it its own way.
    fn read_document(&self, path: &Path) -> Result<Document, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        Ok(self.document(path, &bytes))
    }
}

/// What one whole-document file holds.
#[derive(Debug, Default)]
pub struct Document {
    /// Each request, with whether its tokens are final.
    pub requests: Vec<(Request, bool)>,
    pub malformed: u64,
}

fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, ext, out),
            Ok(t) if t.is_file() && p.extension().is_some_and(|x| x == ext) => out.push(p),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Claude Code

pub struct Claude {
    pub roots: Vec<PathBuf>,
}

impl Claude {
    /// Every `CLAUDE_CONFIG_DIR` entry (comma-separated), else both default homes.
    pub fn from_env() -> Claude {
        if let Some(v) = std::env::var_os("CLAUDE_CONFIG_DIR") {
            let roots = v
                .to_string_lossy()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect();
            return Claude { roots };
        }
        let home = user_home();
        Claude {
            roots: vec![home.join(".config/claude"), home.join(".claude")],
        }
    }
}

impl Source for Claude {
    fn kind(&self) -> AgentKind {
        AgentKind::ClaudeCode
    }
    fn roots(&self) -> Vec<PathBuf> {
        self.roots.iter().map(|r| r.join("projects")).collect()
    }
    fn discover(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for r in self.roots() {
            // Subagent transcripts (<session>/subagents/agent-*.jsonl) are found by the walk.
            walk(&r, "jsonl", &mut out);
        }
        out.sort();
        out.dedup();
        out
    }
    fn resumable(&self) -> bool {
        true
    }
    fn parser(&self, _path: &Path) -> Box<dyn LineParser> {
        Box::new(ClaudeParser { prompt: None })
    }
}

struct ClaudeParser {
    prompt: Option<Arc<str>>,
}

impl LineParser for ClaudeParser {
    fn line(&mut self, line: &[u8], want_text: &dyn Fn(i64) -> bool) -> Parsed {
        match parse_line(line) {
            ClaudeLine::Request(r) => {
                let key = r.key();
                let text = want_text(r.timestamp_ms).then(|| Text {
                    prompt: self.prompt.clone(),
                    response: r.text,
                    tools: r.tool_names,
                });
                Parsed::Request(Box::new(Request {
                    id: event_id(AgentKind::ClaudeCode, &key.message_id, &key.request_id),
                    agent: AgentKind::ClaudeCode,
                    ts: r.timestamp_ms,
                    model: r.model,
                    usage: r.usage,
                    fast: r.fast,
                    session_id: r.session_id,
                    cwd: r.cwd.unwrap_or_default(),
                    branch: r.git_branch.unwrap_or_default(),
                    line_tag: crate::tail::fnv1a(r.uuid.as_bytes()),
                    text,
                }))
            }
            ClaudeLine::Prompt(p) => {
                // Kept even when text is not wanted now: a later request in
                // the same file may be recent enough to ship.
                self.prompt = Some(Arc::from(p.text));
                Parsed::Prompt
            }
            ClaudeLine::Skip => Parsed::Skip,
            ClaudeLine::Malformed(_) => Parsed::Malformed,
        }
    }
}

// ---------------------------------------------------------------------------
// Codex CLI

pub struct Codex {
    pub home: PathBuf,
}

impl Codex {
    pub fn from_env() -> Codex {
        let home = std::env::var_os("CODEX_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| user_home().join(".codex"));
        Codex { home }
    }
}

impl Source for Codex {
    fn kind(&self) -> AgentKind {
        AgentKind::Codex
    }
    fn roots(&self) -> Vec<PathBuf> {
        vec![self.home.join("sessions")]
    }
    fn discover(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.home.join("sessions"), "jsonl", &mut out);
        out.sort();
        out
    }
    fn resumable(&self) -> bool {
        // Token counts are cumulative: a delta needs the previous total.
        false
    }
    fn parser(&self, path: &Path) -> Box<dyn LineParser> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let sid = session_id_from_file_name(name).unwrap_or("").to_string();
        Box::new(CodexParser {
            file: CodexFile::new(sid),
            fallback_session: path.to_string_lossy().into_owned(),
        })
    }
}

struct CodexParser {
    file: CodexFile,
    /// Files without a recognisable session id still need a stable identity.
    fallback_session: String,
}

impl LineParser for CodexParser {
    fn line(&mut self, line: &[u8], _want_text: &dyn Fn(i64) -> bool) -> Parsed {
        match self.file.push_line(line) {
            CodexLine::Request(r) => {
                let session = if r.session_id.is_empty() {
                    self.fallback_session.clone()
                } else {
                    r.session_id
                };
                let seq = r.seq.to_string();
                Parsed::Request(Box::new(Request {
                    id: event_id(AgentKind::Codex, &session, &seq),
                    agent: AgentKind::Codex,
                    ts: r.timestamp_ms,
                    model: r.model,
                    usage: r.usage,
                    fast: false,
                    session_id: session,
                    cwd: r.cwd.unwrap_or_default(),
                    branch: r.branch.unwrap_or_default(),
                    line_tag: r.seq as u64,
                    // Codex rollouts carry no per-request text we ship.
                    text: None,
                }))
            }
            CodexLine::Skip => Parsed::Skip,
            CodexLine::Malformed(_) => Parsed::Malformed,
        }
    }
}

// ---------------------------------------------------------------------------
// Whole-document sources

/// Document sources have no lines to parse.
struct NoLines;

impl LineParser for NoLines {
    fn line(&mut self, _line: &[u8], _want_text: &dyn Fn(i64) -> bool) -> Parsed {
        Parsed::Skip
    }
}

/// Every file under `dir` whose name ends in one of `exts` and passes `keep`.
fn walk_docs(dir: &Path, exts: &[&str], keep: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk_docs(&p, exts, keep, out),
            Ok(t)
                if t.is_file()
                    && p.extension().is_some_and(|x| exts.iter().any(|e| x == *e))
                    && keep(&p) =>
            {
                out.push(p)
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Gemini CLI

pub struct Gemini {
    /// The `.gemini` directory.
    pub home: PathBuf,
}

impl Gemini {
    /// `TALLY_GEMINI_DIR` (a `.gemini` directory, for tests and unusual
    /// installs), else `~/.gemini`.
    pub fn from_env() -> Gemini {
        let home = std::env::var_os("TALLY_GEMINI_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| user_home().join(".gemini"));
        Gemini { home }
    }
}

impl Source for Gemini {
    fn kind(&self) -> AgentKind {
        AgentKind::GeminiCli
    }
    fn roots(&self) -> Vec<PathBuf> {
        vec![self.home.join("tmp")]
    }
    fn discover(&self) -> Vec<PathBuf> {
        let tmp = self.home.join("tmp");
        // tmp/<project>/chats/*.json[l], and subagent chats one level deeper;
        // never the writer's `.tmp-*` files or other JSON under tmp/.
        let keep = |p: &Path| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.')
                && p.strip_prefix(&tmp).is_ok_and(|rel| {
                    rel.components()
                        .nth(1)
                        .is_some_and(|c| c.as_os_str() == "chats")
                })
        };
        let mut out = Vec::new();
        walk_docs(&tmp, &["json", "jsonl"], &keep, &mut out);
        out.sort();
        out
    }
    fn resumable(&self) -> bool {
        false
    }
    fn parser(&self, _path: &Path) -> Box<dyn LineParser> {
        Box::new(NoLines)
    }
    fn documents(&self) -> bool {
        true
    }
    fn document(&self, path: &Path, bytes: &[u8]) -> Document {
        let chat = match tally_core::gemini::parse_chat(bytes) {
            Ok(c) => c,
            Err(_) => {
                return Document {
                    requests: Vec::new(),
                    malformed: 1,
                }
            }
        };
        let session = if chat.session_id.is_empty() {
            path.to_string_lossy().into_owned()
        } else {
            chat.session_id
        };
        let project = gemini_project(&self.home.join("tmp"), path, &chat.project_hash);
        let requests = chat
            .requests
            .into_iter()
            .map(|r| {
                let req = Request {
                    id: event_id(AgentKind::GeminiCli, &session, &r.message_id),
                    agent: AgentKind::GeminiCli,
                    ts: r.timestamp_ms,
                    model: r.model,
                    usage: r.usage,
                    fast: false,
                    session_id: session.clone(),
                    cwd: project.clone(),
                    // Gemini CLI's chats record no branch.
                    branch: String::new(),
                    line_tag: crate::tail::fnv1a(r.message_id.as_bytes()),
                    // Chat text is not read yet: Gemini requests ship without it.
                    text: None,
                };
                (req, true)
            })
            .collect();
        Document {
            requests,
            malformed: chat.malformed,
        }
    }
}

/// The project of a chat: Gemini CLI writes the project's path to
/// `tmp/<project>/.project_root` (newer versions); otherwise the folder is a
/// hash of the path that cannot be reversed, and stands for it.
fn gemini_project(tmp: &Path, chat: &Path, project_hash: &str) -> String {
    let dir = chat
        .strip_prefix(tmp)
        .ok()
        .and_then(|rel| rel.components().next())
        .map(|c| tmp.join(c));
    if let Some(dir) = &dir {
        if let Ok(root) = std::fs::read_to_string(dir.join(".project_root")) {
            let root = root.trim();
            if !root.is_empty() {
                return root.to_string();
            }
        }
    }
    match dir.as_ref().and_then(|d| d.file_name()) {
        Some(n) => format!("gemini:{}", n.to_string_lossy()),
        None => format!("gemini:{project_hash}"),
    }
}

// ---------------------------------------------------------------------------
// OpenCode

pub struct OpenCode {
    /// OpenCode's data directory (holding `storage/`).
    pub data: PathBuf,
}

impl OpenCode {
    /// `TALLY_OPENCODE_DIR`, else `$XDG_DATA_HOME/opencode`, else
    /// `~/.local/share/opencode` (where OpenCode keeps its data).
    pub fn from_env() -> OpenCode {
        let data = std::env::var_os("TALLY_OPENCODE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_DATA_HOME")
                    .filter(|v| !v.is_empty())
                    .map(|v| PathBuf::from(v).join("opencode"))
            })
            .unwrap_or_else(|| user_home().join(".local/share/opencode"));
        OpenCode { data }
    }
}

impl Source for OpenCode {
    fn kind(&self) -> AgentKind {
        AgentKind::OpenCode
    }
    fn roots(&self) -> Vec<PathBuf> {
        vec![self.data.join("storage/message")]
    }
    fn discover(&self) -> Vec<PathBuf> {
        let keep = |p: &Path| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("msg_"))
        };
        let mut out = Vec::new();
        walk_docs(
            &self.data.join("storage/message"),
            &["json"],
            &keep,
            &mut out,
        );
        out.sort();
        out
    }
    fn resumable(&self) -> bool {
        false
    }
    fn parser(&self, _path: &Path) -> Box<dyn LineParser> {
        Box::new(NoLines)
    }
    fn documents(&self) -> bool {
        true
    }
    fn document(&self, path: &Path, bytes: &[u8]) -> Document {
        use tally_core::opencode::parse_message;
        let folder = path
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match parse_message(bytes, &folder) {
            OpenCodeMessage::Request(r) => {
                let (cwd, complete) = (r.cwd.clone().unwrap_or_default(), r.complete);
                Document {
                    requests: vec![(opencode_request(r, cwd), complete)],
                    malformed: 0,
                }
            }
            OpenCodeMessage::Skip => Document::default(),
            OpenCodeMessage::Malformed(_) => Document {
                requests: Vec::new(),
                malformed: 1,
            },
        }
    }
}

/// OpenCode 1.2 and later: the `message` table of `opencode.db`.
pub struct OpenCodeDb {
    pub db: PathBuf,
}

impl Source for OpenCodeDb {
    fn kind(&self) -> AgentKind {
        AgentKind::OpenCode
    }
    fn roots(&self) -> Vec<PathBuf> {
        self.db
            .parent()
            .map(Path::to_path_buf)
            .into_iter()
            .collect()
    }
    fn discover(&self) -> Vec<PathBuf> {
        // In WAL mode new rows land in `-wal` and the database file changes
        // only at checkpoints: either file changing means "read again". Both
        // read the same rows; the index counts each message once.
        let mut wal = self.db.clone().into_os_string();
        wal.push("-wal");
        [self.db.clone(), PathBuf::from(wal)]
            .into_iter()
            .filter(|p| p.is_file())
            .collect()
    }
    fn resumable(&self) -> bool {
        false
    }
    fn parser(&self, _path: &Path) -> Box<dyn LineParser> {
        Box::new(NoLines)
    }
    fn documents(&self) -> bool {
        true
    }
    fn read_document(&self, path: &Path) -> Result<Document, String> {
        use rusqlite::{Connection, OpenFlags};
        use tally_core::opencode::parse_row;
        // Read-only, never creating anything; OpenCode may be writing (WAL
        // readers do not block it, and a busy database is retried next scan).
        let conn = Connection::open_with_flags(
            &self.db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| e.to_string())?;
        conn.busy_timeout(std::time::Duration::from_secs(2))
            .map_err(|e| e.to_string())?;
        // The session's directory is the project; older schemas may lack it.
        let joined = "SELECT m.id, m.session_id, m.data, s.directory FROM message m \
                      LEFT JOIN session s ON s.id = m.session_id ORDER BY m.rowid";
        let plain = "SELECT id, session_id, data, NULL FROM message ORDER BY rowid";
        let mut stmt = conn
            .prepare(joined)
            .or_else(|_| conn.prepare(plain))
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    // TEXT in OpenCode's schema; a BLOB would do as well.
                    r.get_ref(2)?.as_bytes()?.to_vec(),
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(|e| e.to_string())?;
        let mut doc = Document::default();
        for row in rows {
            let Ok((id, session, data, dir)) = row else {
                doc.malformed += 1;
                continue;
            };
            match parse_row(&id, &session, &data) {
                OpenCodeMessage::Request(r) => {
                    let cwd = r.cwd.clone().or(dir).unwrap_or_default();
                    let complete = r.complete;
                    doc.requests.push((opencode_request(r, cwd), complete));
                }
                OpenCodeMessage::Skip => {}
                OpenCodeMessage::Malformed(_) => doc.malformed += 1,
            }
        }
        if path != self.db {
            // The WAL's read is the same rows: their bad ones are counted once, on the database.
            doc.malformed = 0;
        }
        Ok(doc)
    }
}

fn opencode_request(r: tally_core::opencode::OpenCodeRequest, cwd: String) -> Request {
    Request {
        id: event_id(AgentKind::OpenCode, &r.session_id, &r.message_id),
        agent: AgentKind::OpenCode,
        ts: r.timestamp_ms,
        model: r.model,
        usage: r.usage,
        fast: false,
        session_id: r.session_id,
        cwd,
        // OpenCode's messages record no branch.
        branch: String::new(),
        line_tag: crate::tail::fnv1a(r.message_id.as_bytes()),
        // OpenCode message text is not read: its events carry none.
        text: None,
    }
}

/// The sources the agent reads, in a fixed order.
pub fn all_from_env() -> Vec<Box<dyn Source>> {
    vec![
        Box::new(Claude::from_env()),
        Box::new(Codex::from_env()),
        Box::new(Gemini::from_env()),
        Box::new(OpenCode::from_env()),
        Box::new(OpenCodeDb {
            db: OpenCode::from_env().data.join("opencode.db"),
        }),
    ]
}

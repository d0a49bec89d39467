//! The rule table, in tie-break order, and the refinements of single rules.
//! Provider keys are matched by their documented prefixes, generic secrets by
//! assignment syntax.

use regex::Regex;

use super::checks::{card_ok, email_ok, iban_refine, ipv4_ok, ipv6_ok, phone_ok, ssn_ok};
use super::entropy::chunks;
use super::prefilter::{Counts, Gate};
use super::{Cand, Finder, Kind, Refine, Rule};

pub(super) fn all() -> Vec<Rule> {
    let re = |p: &str| Regex::new(p).expect("redaction patterns are valid");
    let rx = |kind: Kind, p: String, refine: Option<Refine>, gate: Gate| Rule {
        kind,
        finder: Finder::Re(re(&p)),
        refine,
        gate: Some(gate),
    };
    // An unquoted value: any printable ASCII up to whitespace or the line
    // end (generated passwords use every symbol), not opening with a quote
    // (that is a quoted value, or an unclosed one) or an escaped quote.
    // `assignment_refine` hands back what belongs to the code around it: a
    // trailing `;` or `,`, an unbalanced closing bracket or quote, a closing
    // tag, the next `&key=` of a query string. Non-ASCII ends the value,
    // since there it is far more often a closing bracket or quote (`」`,
    // `”`, `→`) than part of it; a quoted value may hold anything.
    let unquoted = r#"(?:[!#-&(-\[\]-~]|\\[!#-&(-~])[!-~]*"#;
    let keyword = r"(?i-u:secret[_-]?access[_-]?key|(?:api|access|auth|secret|private|signing|encryption|master|client)[_-]?key|apikey|client[_-]?secret|secret|passw(?:or)?d|passphrase|pass|pwd|(?:auth|access|refresh|session|bearer|api|id)?[_-]?token|credentials?)";
    vec![
        rx(
            Kind::PrivateKey,
            r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s\\:,.-]*?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|(?:(?:\r?\n|\\r?\\n)(?:[A-Za-z-]+: [^\r\n\\]*|[A-Za-z0-9+/=]+))*)"
                .into(),
            Some(pem_ok),
            Gate::Anywhere(&["-----BEGIN"]),
        ),
        rx(
            Kind::AnthropicApiKey,
            format!(r"{B}sk-ant-[A-Za-z0-9_-]{{20,}}"),
            None,
            Gate::Words(&["sk-ant-"]),
        ),
        rx(
            Kind::OpenaiApiKey,
            format!(r"{B}sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{{20,}}"),
            Some(openai_ok),
            Gate::Words(&["sk-"]),
        ),
        rx(
            Kind::TallyToken,
            format!(r"{B}tly_(?:inst|agent|signin)_[A-Za-z0-9_-]{{16,}}"),
            None,
            Gate::Words(&["tly_"]),
        ),
        rx(
            Kind::AwsAccessKey,
            format!(r"{B}(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{{16}}{B}"),
            None,
            Gate::Words(&["AKIA", "ASIA", "ABIA", "ACCA"]),
        ),
        rx(
            Kind::AwsSecretKey,
            r#"(?i-u:secret[_-]?(?:access[_-]?)?key)\\?["']?[ \t]*(?:=>|:=|[:=])[ \t]*\\?["']?([A-Za-z0-9/+]{40})"#
                .into(),
            Some(aws_secret_ok),
            Gate::Words(&["secret"]),
        ),
        rx(
            Kind::GithubToken,
            format!(r"{B}(?:gh[pousr]_[A-Za-z0-9]{{36,255}}|github_pat_[A-Za-z0-9_]{{22,255}}){B}"),
            None,
            Gate::Words(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"]),
        ),
        rx(
            Kind::GitlabToken,
            format!(r"{B}gl(?:pat|dt|rt|ptt)-[A-Za-z0-9_-]{{20,}}"),
            None,
            Gate::Words(&["glpat-", "gldt-", "glrt-", "glptt-"]),
        ),
        rx(
            Kind::SlackWebhook,
            r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{8,}"
                .into(),
            None,
            Gate::Words(&["hooks.slack.com/"]),
        ),
        rx(
            Kind::SlackToken,
            format!(r"{B}(?:xox[abposre]|xapp)-[A-Za-z0-9-]{{10,}}"),
            None,
            Gate::Words(&["xox", "xapp-"]),
        ),
        rx(
            Kind::StripeKey,
            format!(r"{B}(?:(?:sk|rk)_(?:live|test)|whsec)_[A-Za-z0-9]{{16,}}"),
            None,
            Gate::Words(&["sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"]),
        ),
        rx(
            Kind::GoogleApiKey,
            format!(r"{B}AIza[0-9A-Za-z_-]{{35}}"),
            Some(not_followed_by_token),
            Gate::Words(&["AIza"]),
        ),
        rx(
            Kind::AzureStorageKey,
            r#"(?i-u:accountkey)[ \t]*[=:][ \t]*["']?([A-Za-z0-9+/]{86}==)"#.into(),
            None,
            Gate::Words(&["accountkey"]),
        ),
        rx(Kind::NpmToken, format!(r"{B}npm_[A-Za-z0-9]{{36}}{B}"), None, Gate::Words(&["npm_"])),
        rx(
            Kind::PypiToken,
            format!(r"{B}pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{{50,}}"),
            None,
            Gate::Words(&["pypi-AgEIcHlwaS5vcmc"]),
        ),
        rx(
            Kind::Jwt,
            format!(r"{B}eyJ[A-Za-z0-9_-]{{5,}}\.[A-Za-z0-9_-]{{5,}}(?:\.[A-Za-z0-9_-]+)?"),
            None,
            Gate::Words(&["eyJ"]),
        ),
        rx(
            Kind::UrlCredentials,
            // The password may itself contain `@`; greedy matching ends the
            // userinfo at the last `@` before the host.
            format!(r#"{B}[A-Za-z][A-Za-z0-9+.-]{{1,20}}://([^\s:/?#@\[\]"'<>]*:[^\s/?#\[\]"'<>]+)@"#),
            None,
            Gate::Words(&["://"]),
        ),
        rx(
            Kind::Email,
            format!(r"{B}[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?)*\.[A-Za-z]{{2,24}}{B}"),
            Some(email_ok),
            Gate::Words(&["@"]),
        ),
        rx(
            Kind::Iban,
            format!(r"{B}[A-Z]{{2}}[0-9]{{2}}(?: ?[A-Z0-9]{{4}}){{2,7}}(?: ?[A-Z0-9]{{1,3}})?{B}"),
            Some(iban_refine),
            Gate::Counts(|c| c.digits >= 2 && c.upper >= 2),
        ),
        rx(
            Kind::CreditCard,
            format!(r"{B}[0-9](?:[ -]?[0-9]){{12,18}}{B}"),
            Some(card_ok),
            Gate::Counts(|c| c.digits >= 13),
        ),
        rx(
            Kind::UsSsn,
            format!(r"{B}[0-9]{{3}}-[0-9]{{2}}-[0-9]{{4}}{B}"),
            Some(ssn_ok),
            Gate::Counts(|c| c.digits >= 9),
        ),
        rx(
            Kind::Phone,
            format!(
                r"(?:\+[1-9][0-9]{{0,2}}(?:[ .-]?\([0-9]{{1,4}}\))?(?:[ .-]?[0-9]{{1,5}}){{1,6}}|(?:{B}1[ .-]?)?\([2-9][0-9]{{2}}\) ?[2-9][0-9]{{2}}-[0-9]{{4}}|{B}(?:1[.-])?[2-9][0-9]{{2}}[.-][2-9][0-9]{{2}}[.-][0-9]{{4}}|{B}0[1-9][0-9]{{1,4}}[ /-][0-9]{{3,8}}(?:[ -][0-9]{{2,4}}){{0,3}}){B}"
            ),
            Some(phone_ok),
            Gate::Counts(phone_gate),
        ),
        rx(
            Kind::Ipv6,
            r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4})".into(),
            Some(ipv6_ok),
            Gate::Counts(|c| c.colons >= 2 && c.digits >= 1),
        ),
        rx(
            Kind::Ipv4,
            format!(r"{B}(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{{2}}|[1-9]?[0-9])\.){{3}}(?:25[0-5]|2[0-4][0-9]|1[0-9]{{2}}|[1-9]?[0-9]){B}"),
            Some(ipv4_ok),
            Gate::Counts(|c| c.digits >= 4 && c.dots >= 3),
        ),
        rx(
            Kind::PasswordAssignment,
            // The key must end right at the separator, so `max_tokens = 4096`
            // and `token_count: 12` are not keys.
            format!(
                r#"{keyword}\\?["']?\]?[ \t]*(?:=>|:=|[:=])[ \t]*(?:\\?"([^"\r\n]+)"|\\?'([^'\r\n]+)'|({unquoted}))"#
            ),
            Some(assignment_refine),
            Gate::Words(ASSIGNMENT_KEYWORDS),
        ),
        rx(
            Kind::PasswordAssignment,
            r#"(?:(?i-u:authorization)\\?["']?[ \t]*[:=][ \t]*\\?["']?(?i-u:bearer|basic|token|digest)|(?i-u:bearer))[ \t]+([A-Za-z0-9._~+/-]{16,}=*)"#
                .into(),
            Some(bearer_ok),
            Gate::Words(&["bearer", "authorization"]),
        ),
        Rule {
            kind: Kind::HighEntropy,
            finder: Finder::HighEntropy,
            refine: None,
            gate: None,
        },
    ]
}

/// Every key `keyword` accepts contains one of these.
const ASSIGNMENT_KEYWORDS: &[&str] = &["secret", "key", "pass", "pwd", "token", "credential"];

/// `phone_ok` wants 8–15 digits after a `+`, else 10–12.
fn phone_gate(c: &Counts) -> bool {
    c.digits >= 8
}

/// ASCII word boundary. The Unicode `\b` would miss a key glued to
/// non-ASCII prose (`密钥AKIA…`) and force the regex engine off its DFA
/// whenever the text holds a non-ASCII byte.
const B: &str = r"(?-u:\b)";

fn is_b64(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '+' || c == '/'
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn not_followed_by_token(c: Cand) -> Option<(usize, usize)> {
    if c.after().is_some_and(is_token_char) {
        return None;
    }
    c.keep()
}

fn pem_ok(c: Cand) -> Option<(usize, usize)> {
    // A bare header (in docs, or a regex that looks for one) hides nothing;
    // a truncated key without its END line still does.
    let s = c.secret_str();
    let body = s.split_once("KEY-----").map_or("", |(_, b)| b);
    let key_chars = body.bytes().filter(|&b| is_b64(b as char)).count();
    (s.contains("-----END") || key_chars >= 40).then_some(c.secret)
}

fn openai_ok(c: Cand) -> Option<(usize, usize)> {
    // Kebab-case identifiers such as `sk-learn-model-selection-helpers` share
    // the prefix; generated keys always carry digits or capitals.
    let body = &c.secret_str()[3..];
    if body.starts_with("ant-") {
        return None;
    }
    if !body
        .bytes()
        .any(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    {
        return None;
    }
    c.keep()
}

fn aws_secret_ok(c: Cand) -> Option<(usize, usize)> {
    if c.after().is_some_and(|ch| is_b64(ch) || ch == '=') {
        return None;
    }
    c.keep()
}

/// Values after `password=`-style keys that are clearly not secrets.
fn assignment_refine(c: Cand) -> Option<(usize, usize)> {
    let text = c.text;
    // `bypass = 1`, `compass: 270`: only a standalone `pass` is a key.
    let key = &text[c.whole.0..];
    if (key.starts_with("pass") || key.starts_with("PASS") || key.starts_with("Pass"))
        && !key[4..].starts_with(['w', 'W', 'p', 'P'])
        && text[..c.whole.0]
            .chars()
            .next_back()
            .is_some_and(|ch| ch.is_ascii_alphabetic())
    {
        return None;
    }
    let quoted = c.secret.0 > 0 && matches!(text.as_bytes()[c.secret.0 - 1], b'"' | b'\'');
    let (s0, mut s1) = c.secret;
    if !quoted {
        s1 = s0 + unquoted_len(&text[s0..s1]);
    }
    let mut v = &text[s0..s1];
    // Sentence punctuation and the backslash of an escaped JSON quote are not part of it.
    // (Inside quotes only the backslash: the quotes end the value.)
    while let Some(t) = v
        .strip_suffix('\\')
        .or_else(|| v.strip_suffix('.').filter(|_| !quoted))
        .or_else(|| v.strip_suffix(':').filter(|_| !quoted))
    {
        v = t;
        s1 -= 1;
    }
    if v.len() < 4 || v.starts_with("[REDACTED") {
        return None;
    }
    let first = v.chars().next()?;
    // References and templates (`$DB_PASSWORD`, `${x}`, `{{ .Values }}`,
    // `<your token>`, `%s`), masks (`****`) and expressions (`&self.key`,
    // `*ptr`, `[0u8`) name or hide a secret, not carry it. A generated
    // password may open with any symbol too; it has the mixed character
    // classes these lack.
    if v.chars().all(|ch| ch == first) || v.contains("::") || v.ends_with('(') {
        return None;
    }
    // `b"…"`, `r"…"`, `f'…'`: a prefixed string literal in code (keys and
    // labels of test vectors); `\t{}`, `\w{20}`: escapes and patterns;
    // `Key::new`: a path.
    let sep = &text[c.whole.0..s0];
    let lit = v.bytes().take_while(u8::is_ascii_alphabetic).count();
    if (!quoted && (1..=2).contains(&lit) && matches!(v.as_bytes().get(lit), Some(b'"' | b'\'')))
        || (first == '\\' && v[1..].starts_with(|ch: char| ch.is_ascii_alphabetic()))
        || v.contains("{}")
        || (first == ':' && sep.ends_with(':'))
    {
        return None;
    }
    if matches!(
        first,
        '$' | '{'
            | '}'
            | '<'
            | '>'
            | '%'
            | '&'
            | '['
            | ']'
            | '('
            | ')'
            | '#'
            | '*'
            | ':'
            | '='
            | ';'
            | ','
            | '`'
    ) && (is_template(v) || is_code_path(v, !quoted) || !password_shaped(v))
    {
        return None;
    }
    let lower = v.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "none"
            | "null"
            | "true"
            | "false"
            | "string"
            | "undefined"
            | "required"
            | "optional"
            | "redacted"
            | "hidden"
            | "secret"
            | "password"
            | "token"
            | "example"
    ) || lower.starts_with("your")
        || lower.starts_with("xxxx")
    {
        return None;
    }
    // `Token::I64(…)` is a path, not `Token: …`.
    if sep.contains("::") {
        return None;
    }
    // `UPPER_SNAKE` names a constant, type or environment variable (`"API_KEY"`).
    if v.contains('_')
        && v.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let has_digit = v.bytes().any(|b| b.is_ascii_digit());
    let has_symbol = v
        .bytes()
        .any(|b| !b.is_ascii_alphanumeric() && !b"_.:/-".contains(&b));
    if quoted {
        // A quoted literal after a secret-named key is the secret, unless it
        // reads as prose (a help text or error message).
        if v.contains(char::is_whitespace) {
            return None;
        }
    } else {
        // Unquoted, `token = self.token` or `password: String` is code; real
        // values carry digits or symbols. `DB_PASSWORD=abc` (upper-case key, bare `=`) is an env file or a
        // shell line, where any value is a value; elsewhere a letters-only
        // value must look random (many case chunks), not like a type or a name.
        let env_style = sep.ends_with('=')
            && !sep.contains(char::is_whitespace)
            && !sep.bytes().any(|b| b.is_ascii_lowercase());
        let random_letters = v.len() >= 10
            && v.bytes().filter(u8::is_ascii_uppercase).count() >= 2
            && v.bytes().filter(u8::is_ascii_lowercase).count() >= 2
            && chunks(v.as_bytes()) * 20 >= v.len() * 7;
        if !(has_digit || has_symbol || env_style || random_letters) {
            return None;
        }
        // Numeric literals (`token = 42`, `0x04`, `0i32`) are counts and flags,
        // except after a password key, where digits alone are a PIN.
        let pin = ["pass", "pwd"].iter().any(|p| {
            key.get(..p.len())
                .is_some_and(|k| k.eq_ignore_ascii_case(p))
        }) && v.bytes().all(|b| b.is_ascii_digit());
        if is_number_literal(v) && !pin {
            return None;
        }
        // `TOKEN: _bindgen_ty_7 = …` annotates a type; the value comes after `=`.
        if sep.trim_end().ends_with(':')
            && text[s1..].trim_start_matches([' ', '\t']).starts_with('=')
        {
            return None;
        }
        // `let password = entry2;`, `token = buf1.clone()`: a variable, not a literal.
        let ident = v.starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_')
            && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let line = text[..c.whole.0].rsplit('\n').next().unwrap_or("");
        let declared = ["let ", "const ", "var ", "val ", "mut ", "static "]
            .iter()
            .any(|kw| line.contains(kw));
        let rest = &text[s1..];
        let follows = rest.starts_with(['(', '?', ';', ',', ')', '}'])
            || (rest.starts_with('.')
                && rest[1..].starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_'));
        if ident && !env_style && (declared || follows) {
            return None;
        }
        // `foo(bar)`, `tokens[i]`, `Vec<u8>`, `cfg.get(k)?`: an expression.
        if v.contains(['(', '[', '<', '{', '?']) && is_code_path(v, true) {
            return None;
        }
        // `node.dot2_token`, `self.cfg.secret`: a field path.
        if v.contains('.')
            && v.split('.').all(|p| {
                p.starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_')
                    && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
        {
            return None;
        }
        // `vec![…]`, `format!(…)`: a macro call, not a value.
        let next = text[s1..].trim_start_matches([' ', '\t']);
        if (v.ends_with('!') && next.starts_with(['(', '[', '{'])) || v.contains("()") {
            return None;
        }
    }
    Some((s0, s1))
}

/// Length of an unquoted value once what belongs to the surrounding code
/// is handed back: the next pair of a query or connection string
/// (`&page=2`, `;Server=db`), then trailing `;` or `,`, closing brackets and
/// quotes without an opening one in the value, and closing tags (`</td>`).
fn unquoted_len(v: &str) -> usize {
    let b = v.as_bytes();
    let mut end = b.len();
    for i in 0..b.len() {
        let rest = &b[i + 1..];
        let cut = match b[i] {
            // `&page=2`, `;Server=db`: three or more letters and `=`.
            b'&' | b';' => {
                let name = rest
                    .iter()
                    .take_while(|&&c| c.is_ascii_alphabetic() || c == b'_')
                    .count();
                name >= 3 && rest.get(name) == Some(&b'=')
            }
            // `<td>`, `</td>`, `<any`: markup or prose around the value.
            b'<' => {
                let tag = rest.strip_prefix(b"/").unwrap_or(rest);
                let name = tag.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
                name >= 1
                    && tag[0].is_ascii_alphabetic()
                    && matches!(tag.get(name), Some(&b'>') | None)
            }
            _ => false,
        };
        if cut {
            end = i;
            break;
        }
    }
    loop {
        let v = &b[..end];
        let Some(&last) = v.last() else { break };
        let count = |c: u8| v.iter().filter(|&&x| x == c).count();
        let unbalanced = |open: u8| count(open) < count(last);
        let drop = match last {
            b';' | b',' | b'.' | b':' => 1,
            b')' if unbalanced(b'(') => 1,
            b']' if unbalanced(b'[') => 1,
            b'}' if unbalanced(b'{') => 1,
            b'"' | b'\'' | b'`' if count(last) % 2 == 1 => 1,
            b'>' if unbalanced(b'<') => 1,
            _ => 0,
        };
        if drop == 0 {
            break;
        }
        end -= drop;
    }
    end
}

/// `${X}`, `$(cmd)`, `$NAME`, `{{ x }}`, `{name}`, `<your-token>`, `%s`,
/// `%(name)s`, `%NAME%`, `#{x}`, `<%= x %>`: a placeholder for a value.
fn is_template(v: &str) -> bool {
    let b = v.as_bytes();
    let (first, last) = (b[0], b[b.len() - 1]);
    let ident =
        |s: &[u8]| !s.is_empty() && s.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_');
    ["${", "$(", "{{", "%(", "#{", "<%", "%{"]
        .iter()
        .any(|p| v.starts_with(p))
        || (matches!(
            (first, last),
            (b'{', b'}') | (b'<', b'>') | (b'[', b']') | (b'(', b')')
        ) && !password_shaped(&v[1..v.len() - 1]))
        || (first == b'$' && ident(&b[1..]))
        || (first == b'%' && last == b'%' && ident(&b[1..b.len() - 1]))
        || (first == b'%'
            && b[1..b.len() - 1]
                .iter()
                .all(|c| b"-+ #0123456789.*lhzjt".contains(c))
            && last.is_ascii_alphabetic())
}

/// An identifier path with calls, indexes and generics (`&self.key`,
/// `*ptr`, `args[1]`, `Some(x)`, `vec![1`, `Vec<u8>`, `cfg.get(k)?`),
/// after any leading `&`, `*`, `!`, `-`, `:`, `=`, `@`, `#`, `$`; a bracket
/// may be left open where the value was cut at whitespace.
fn is_code_path(v: &str, cut: bool) -> bool {
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() && b"&*!-:=@#$".contains(&b[i]) {
        i += 1;
    }
    let mut segments = 0;
    loop {
        // An identifier.
        if i >= b.len() || !(b[i].is_ascii_alphabetic() || b[i] == b'_') {
            return false;
        }
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        segments += 1;
        // Postfix: `!(`, brackets (balanced, or open to the end), `?`.
        loop {
            if i < b.len() && b[i] == b'!' && matches!(b.get(i + 1), Some(b'(' | b'[' | b'{')) {
                i += 1;
            }
            match b.get(i) {
                Some(&open @ (b'(' | b'[' | b'<' | b'{')) => {
                    let start = i + 1;
                    let closer = |o: u8| match o {
                        b'(' => Some(b')'),
                        b'[' => Some(b']'),
                        b'<' => Some(b'>'),
                        b'{' => Some(b'}'),
                        _ => None,
                    };
                    // Nested brackets of every kind (`Option<Token![>]>`).
                    let mut stack = vec![closer(open).unwrap_or(b')')];
                    i += 1;
                    while i < b.len() {
                        if let Some(c) = closer(b[i]) {
                            stack.push(c);
                        } else if stack.last() == Some(&b[i]) {
                            stack.pop();
                            if stack.is_empty() {
                                break;
                            }
                        }
                        i += 1;
                    }
                    if i >= b.len() {
                        if !cut {
                            return false;
                        }
                        // Left open where the value was cut at whitespace
                        // (`vec![1,`, `format!("{}",`), if it reads as code.
                        return b[start..].iter().all(|&c| {
                            c.is_ascii_alphanumeric() || b"_.,:&*\"'{}()[]<>!-".contains(&c)
                        });
                    }
                    i += 1;
                }
                Some(b'?') => i += 1,
                _ => break,
            }
        }
        if i == b.len() {
            return segments > 1 || b.iter().any(|c| b"([<{?&*".contains(c));
        }
        // A separator, then the next identifier.
        if b[i] == b'.' {
            i += 1;
        } else if b[i..].starts_with(b"::") || b[i..].starts_with(b"->") {
            i += 2;
        } else {
            return false;
        }
    }
}

/// Mixed character classes, as password generators emit: lower and upper
/// case, a digit and two different symbols.
fn password_shaped(v: &str) -> bool {
    let b = v.as_bytes();
    let mut symbols: Vec<u8> = b
        .iter()
        .copied()
        .filter(|c| c.is_ascii_punctuation())
        .collect();
    symbols.sort_unstable();
    symbols.dedup();
    b.len() >= 8
        && b.iter().any(u8::is_ascii_lowercase)
        && b.iter().any(u8::is_ascii_uppercase)
        && b.iter().any(u8::is_ascii_digit)
        && symbols.len() >= 2
}

fn is_number_literal(v: &str) -> bool {
    let body = v
        .strip_prefix("0x")
        .or_else(|| v.strip_prefix("0X"))
        .map_or(v, |h| {
            h.trim_start_matches(|c: char| c.is_ascii_hexdigit() || c == '_')
        });
    let body = body.trim_start_matches(|c: char| c.is_ascii_digit() || c == '_');
    let suffix_ok = matches!(
        body,
        "" | "u8"
            | "u16"
            | "u32"
            | "u64"
            | "u128"
            | "usize"
            | "i8"
            | "i16"
            | "i32"
            | "i64"
            | "i128"
            | "isize"
    );
    suffix_ok && v.len() < 12
}

fn bearer_ok(c: Cand) -> Option<(usize, usize)> {
    // A sentence may end right after the token.
    let v = c.secret_str().trim_end_matches('.');
    if v.starts_with("[REDACTED") || !v.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((c.secret.0, c.secret.0 + v.len()))
}

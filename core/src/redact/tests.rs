use super::*;
use std::cell::Cell;

thread_local! {
    /// Set: every rule regex searches the whole text and the entropy scan
    /// walks every byte (the plain algorithm, to compare the pre-filter with).
    pub(super) static EXHAUSTIVE: Cell<bool> = const { Cell::new(false) };
    /// Bytes handed to rule regexes on this thread.
    pub(super) static REGEX_BYTES: Cell<usize> = const { Cell::new(0) };
}

fn r(s: &str) -> String {
    redact(s)
}

fn kinds(s: &str) -> Vec<&'static str> {
    Redactor::new()
        .redact(s)
        .findings
        .iter()
        .map(|f| f.kind.as_str())
        .collect()
}

#[test]
fn provider_secrets_become_typed_placeholders() {
    let cases = [
        (
            "key sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCD_-xyzAA end",
            "key [REDACTED:anthropic_api_key] end",
        ),
        (
            "OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
            "OPENAI_API_KEY=[REDACTED:openai_api_key]",
        ),
        (
            "legacy sk-T3BlbkFJa1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8",
            "legacy [REDACTED:openai_api_key]",
        ),
        ("id AKIAIOSFODNN7EXAMPLE here", "id [REDACTED:aws_access_key] here"),
        ("sts ASIAY34FZKBOKMUTVV7A.", "sts [REDACTED:aws_access_key]."),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
            "aws_secret_access_key = [REDACTED:aws_secret_key]\n",
        ),
        (
            r#"{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}"#,
            r#"{"SecretAccessKey": "[REDACTED:aws_secret_key]"}"#,
        ),
        (
            "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij",
            "[REDACTED:github_token]",
        ),
        (
            "t=github_pat_11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456",
            "t=[REDACTED:github_token]",
        ),
        ("glpat-abcdefghij0123456789 ok", "[REDACTED:gitlab_token] ok"),
        (
            "xoxb-123456789012-1234567890123-abcdefghijABCDEFGHIJ1234",
            "[REDACTED:slack_token]",
        ),
        (
            "post to https://hooks.slack.com/services/T0001/B0002/XXXXxxxxYYYY now",
            "post to [REDACTED:slack_webhook] now",
        ),
        ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[REDACTED:stripe_key]"),
        ("rk_live_51H8abcdEFGH1234ijkl", "[REDACTED:stripe_key]"),
        (
            "maps?key=AIzaSyA-1234567890abcdefghijklmnopqrstu&x=1",
            "maps?key=[REDACTED:google_api_key]&x=1",
        ),
        (
            "npm_abcdefghijklmnopqrstuvwxyz0123456789",
            "[REDACTED:npm_token]",
        ),
        (
            "pypi-AgEIcHlwaS5vcmcCJDU1YjYxYzQ4LTQ3NTgtNDQ0Ny1iZWQ0LTJlOGQzOTZiMmI0YQ",
            "[REDACTED:pypi_token]",
        ),
        (
            "tly_agent_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "[REDACTED:tally_token]",
        ),
        (
            "Bearer tly_inst_00ff00ff00ff00ff00ff00ff00ff00ff",
            "Bearer [REDACTED:tally_token]",
        ),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "[REDACTED:jwt]",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(r(input), want, "input: {input}");
    }
    let azure = format!(
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={}==;EndpointSuffix=core.windows.net",
        "Ab1+".repeat(21) + "Cd"
    );
    assert_eq!(
        r(&azure),
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=[REDACTED:azure_storage_key];EndpointSuffix=core.windows.net"
    );
}

#[test]
fn private_key_blocks_whole_truncated_and_escaped() {
    let pem = "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nabc+/=\n-----END RSA PRIVATE KEY-----\ny";
    assert_eq!(r(pem), "x\n[REDACTED:private_key]\ny");
    let ssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----";
    assert_eq!(r(ssh), "[REDACTED:private_key]");
    let json = r#"{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n", "x": 1}"#;
    assert_eq!(
        r(json),
        r#"{"private_key": "[REDACTED:private_key]\n", "x": 1}"#
    );
    // Cut off mid-body (a prompt truncated by a size limit): the rest still goes.
    let cut = "see -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4ZbVg9nlTPT0aZ3MaJ7z2dbmKyM1\nqGZ5 and then";
    assert_eq!(r(cut), "see [REDACTED:private_key] and then");
    // A header alone, as in docs or a grep pattern, hides nothing.
    let bare = r#"grep -l "-----BEGIN PRIVATE KEY-----" *.pem"#;
    assert_eq!(r(bare), bare);
}

#[test]
fn url_credentials_keep_scheme_and_host() {
    assert_eq!(
        r("postgres://admin:hunter2@db.internal:5432/x"),
        "postgres://[REDACTED:url_credentials]@db.internal:5432/x"
    );
    // The password may contain `@`; the userinfo ends at the last one.
    assert_eq!(
        r("redis://:p@ss@cache:6379"),
        "redis://[REDACTED:url_credentials]@cache:6379"
    );
    assert_eq!(
        r("git clone https://x-access-token:abc123@github.com/o/r.git"),
        "git clone https://[REDACTED:url_credentials]@github.com/o/r.git"
    );
    // A token as the whole userinfo is caught by its own format, not as an email.
    assert_eq!(
        r("https://ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij@github.com/o/r"),
        "https://[REDACTED:github_token]@github.com/o/r"
    );
    for s in [
        "http://localhost:8080/path",
        "ssh://git@github.com:22/o/r",
        "git@github.com:o/r.git",
    ] {
        assert_eq!(r(s), s);
    }
}

#[test]
fn password_assignments_keep_the_key() {
    let cases = [
        (
            "DB_PASSWORD=s3cr3t-value",
            "DB_PASSWORD=[REDACTED:password_assignment]",
        ),
        (
            "PGPASSWORD=hunter hi",
            "PGPASSWORD=[REDACTED:password_assignment] hi",
        ),
        (
            "password: Tr0ub4dor#3\n",
            "password: [REDACTED:password_assignment]\n",
        ),
        (
            r#"{"api_key": "abc123def"}"#,
            r#"{"api_key": "[REDACTED:password_assignment]"}"#,
        ),
        (
            "apiKey: 'Zq9-xx_77'",
            "apiKey: '[REDACTED:password_assignment]'",
        ),
        (
            "export SECRET_TOKEN=\"Welcome569!\"",
            "export SECRET_TOKEN=\"[REDACTED:password_assignment]\"",
        ),
        (
            "client_secret := \"abcd1234\"",
            "client_secret := \"[REDACTED:password_assignment]\"",
        ),
        (
            "'db_pass' => 'correct#61'",
            "'db_pass' => '[REDACTED:password_assignment]'",
        ),
        (
            "$cfg['db_pass'] => 'hunter90';",
            "$cfg['db_pass'] => '[REDACTED:password_assignment]';",
        ),
        (
            r#"{\"password\": \"p4ss\"}"#,
            r#"{\"password\": \"[REDACTED:password_assignment]\"}"#,
        ),
        ("passwd:hunter2.", "passwd:[REDACTED:password_assignment]."),
        (
            "?token=abc123&page=2",
            "?token=[REDACTED:password_assignment]&page=2",
        ),
        (
            "Authorization: Bearer abcdef0123456789xyz",
            "Authorization: Bearer [REDACTED:password_assignment]",
        ),
        (
            "let password = \"このきれいな花\";",
            "let password = \"[REDACTED:password_assignment]\";",
        ),
        (
            "PIN password=12345678",
            "PIN password=[REDACTED:password_assignment]",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(r(input), want, "input: {input}");
    }
}

/// Generated passwords use every printable symbol; the value runs to the
/// closing quote, or unquoted to whitespace, less what belongs to the code.
#[test]
fn assignment_values_with_any_symbol() {
    let cases = [
        (
            r#"password = "Xk9%mQ#2&vL*8^pZ!""#,
            r#"password = "[REDACTED:password_assignment]""#,
        ),
        (
            "DB_PASSWORD=hunter2!@#Qz",
            "DB_PASSWORD=[REDACTED:password_assignment]",
        ),
        (
            "api_key: 'a@b#c$d%e^f&g*h'",
            "api_key: '[REDACTED:password_assignment]'",
        ),
        (
            "export SECRET_TOKEN=p@ss#w0rd%2024!",
            "export SECRET_TOKEN=[REDACTED:password_assignment]",
        ),
        // `&`, `(`, `]`, `;`, `<`, `{` inside an unquoted value.
        (
            "password=Xk9%mQ#2&vL*8^pZ!\n",
            "password=[REDACTED:password_assignment]\n",
        ),
        (
            "DB_PASSWORD=a(b]c;d<e{f9 next",
            "DB_PASSWORD=[REDACTED:password_assignment] next",
        ),
        // Opening with a symbol, quoted or not.
        (
            "password: %Xk9mQ2#a",
            "password: [REDACTED:password_assignment]",
        ),
        (
            r#""password": "&Zq9%x]Lm2""#,
            r#""password": "[REDACTED:password_assignment]""#,
        ),
        (
            r#""password": "(V1RY.FzBv-)""#,
            r#""password": "[REDACTED:password_assignment]""#,
        ),
        // What belongs to the code stays.
        (
            "f(password=Xk9%mQ#2);",
            "f(password=[REDACTED:password_assignment]);",
        ),
        (
            "[token=Zq9%x!Lm2], ",
            "[token=[REDACTED:password_assignment]], ",
        ),
        (
            "<td>password=Xk9%mQ#2</td>next",
            "<td>password=[REDACTED:password_assignment]</td>next",
        ),
        (
            "`password=Xk9%mQ#2`",
            "`password=[REDACTED:password_assignment]`",
        ),
        (
            "Server=db;Password=pa;ss9!;Timeout=30",
            "Server=db;Password=[REDACTED:password_assignment];Timeout=30",
        ),
        (
            "?access_token=Zq9%x!Lm2&page=2#top",
            "?access_token=[REDACTED:password_assignment]&page=2#top",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(r(input), want, "input: {input}");
    }
}

#[test]
fn code_that_names_secrets_is_left_alone() {
    for s in [
        "let token = self.token.clone();",
        "fn password(&self) -> String",
        "password: String,",
        "pub token: *const u8,",
        "let secret = [0u8; 32];",
        "max_tokens = 4096",
        "input_tokens: 1200, output_tokens: 350",
        "token_count = 12",
        "let api_key = env::var(\"API_KEY\")?;",
        "api_key = os.environ[\"OPENAI_API_KEY\"]",
        "password = ${DB_PASSWORD}",
        "token: \"<your token here>\"",
        "password: ********",
        "bypass = 12345678",
        "token = 42",
        "const FLAG_TOKEN: u32 = 0x04;",
        "dot2_token: node.dot2_token,",
        "let password = entry2;",
        "Token::I64(42)",
        "\"token\": null",
        "secret_name = \"prod\"",
        "the password: is required",
        // Expressions the wider value grammar must not take for values.
        "let token = vec![1, 2];",
        "token = foo(bar);",
        "let token = tokens[i].clone();",
        "let key = &self.keys[idx];",
        "password: &str,",
        "token: Option<Token>,",
        "secret = Some(x)?;",
        "let key = format!(\"{}-{}\", a, b);",
        "password = %(password)s",
        "token = {token}",
        "api_key = %API_KEY%",
        "let secret = b\"abc\";",
        "map(|token| token.len())",
        "let password = b\"oxidize\";",
        "Self::SharedSecret => b\"shared_secret\",",
        "let key = b\"My secret key\";",
        "token = Token::new_with(Some(&name1), x)",
        "secret: Option<(&str, &str)>,",
        "token: Option<Token![>]>,",
        "token = 1*<any CHAR except CTLs>",
        "r\"api_key=\\w{20}\"",
        "format!(\"key: \\t{}\\n\", k)",
        "sorted(items, key=len)",
    ] {
        assert_eq!(r(s), s);
    }
}

#[test]
fn pii_checksums_and_formats() {
    let cases = [
        ("mail jane.doe@example.com ok", "mail [REDACTED:email] ok"),
        ("<dev+ci@corp.io>", "<[REDACTED:email]>"),
        ("card 4111 1111 1111 1111.", "card [REDACTED:credit_card]."),
        ("card 4111-1111-1111-1111", "card [REDACTED:credit_card]"),
        ("amex 3782 822463 10005", "amex [REDACTED:credit_card]"),
        ("pan 5500005555555559 ok", "pan [REDACTED:credit_card] ok"),
        ("IBAN DE89 3704 0044 0532 0130 00", "IBAN [REDACTED:iban]"),
        ("iban GB82WEST12345698765432.", "iban [REDACTED:iban]."),
        ("BE68 5390 0754 7034 AND MORE", "[REDACTED:iban] AND MORE"),
        ("ssn 123-45-6789", "ssn [REDACTED:us_ssn]"),
        ("call +44 20 7946 0958 today", "call [REDACTED:phone] today"),
        ("call (415) 555-2671", "call [REDACTED:phone]"),
        ("tel 415-555-2671.", "tel [REDACTED:phone]."),
        ("+14155552671", "[REDACTED:phone]"),
        ("Tel: +33 6 12 34 56 78", "Tel: [REDACTED:phone]"),
        ("030 12345678", "[REDACTED:phone]"),
        ("host 10.1.2.3 up", "host [REDACTED:ipv4] up"),
        ("ssh ubuntu@203.0.113.7", "ssh ubuntu@[REDACTED:ipv4]"),
        ("from 192.168.1.20:8080", "from [REDACTED:ipv4]:8080"),
        ("v6 2001:db8:85a3::8a2e:370:7334 x", "v6 [REDACTED:ipv6] x"),
        ("[fe80::1ff:fe23:4567:890a]:443", "[[REDACTED:ipv6]]:443"),
        ("::ffff:192.0.2.128 mapped", "[REDACTED:ipv6] mapped"),
    ];
    for (input, want) in cases {
        assert_eq!(r(input), want, "input: {input}");
    }
}

#[test]
fn near_misses_stay_readable() {
    for s in [
        // Checksums and validity rules.
        "card 4111 1111 1111 1112.",
        "order 1234 5678 9012 3456",
        "IBAN DE88 3704 0044 0532 0130 00",
        "ssn 000-12-3456",
        "ssn 666-12-3456",
        "ssn 912-12-3456",
        "ssn 123-00-4567",
        "ssn 123-45-0000",
        // Versions, dates, numbers, ids.
        "version 1.2.3.4",
        "version 1.2.3.4.5",
        "OID 1.3.6.1.4.1.311",
        "x509 OID 2.5.4.10",
        "bind 127.0.0.1:8787 and 0.0.0.0",
        "mask 255.255.255.0",
        "id 550e8400-e29b-41d4-a716-446655440000",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it",
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "2025-11-22T10:00:00Z",
        "on 2024-01-15 at 12:30:45",
        "x = 1e+1441497364.649",
        "ts 1700000000123",
        "nanos 1700000000123456789",
        "const MAX: u64 = 18446744073709551615;",
        "sizes 512 768 1024 2048",
        "hex 01 02 03 04 05 06 07 08",
        "std::collections::HashMap::new()",
        "Self::fa::new",
        "mac 00:1a:2b:3c:4d:5e",
        "icon@2x.png",
        "git@github.com:acme/app.git",
        // Identifiers and paths.
        "ThisIsAVeryLongIdentifierNameForAClassObject",
        "test_proc_macro2_fallback_size_with_locations",
        "aws_lc_0_41_0_X509_NAME_get0_der",
        "https://github.com/BurntSushi/aho-corasick/blob/3852632f10587db0ff72ef29e88d58bf305a0946/src/x.rs",
        "https://raw.githubusercontent.com/RustCrypto/media/6ee8e381/logo.svg",
        "sk-learn-model-selection-helpers-for-tests",
        "TLS_CIPHER_CHACHA20_POLY1305_SALT_SIZE",
        "[REDACTED:email] already clean",
    ] {
        assert_eq!(r(s), s);
    }
}

#[test]
fn high_entropy_catches_generated_secrets_only() {
    assert_eq!(
        r("blob Zx9Qw3Er7Ty1Ui5Op0As8Df2Gh6Jk4Lz end"),
        "blob [REDACTED:high_entropy] end"
    );
    assert_eq!(
        r("sig: q8Y2/vb+Zm3kQ9LwX0pT4rN7sA1cV6eH5uJ2oI8yR3g= ok"),
        "sig: [REDACTED:high_entropy] ok"
    );
    // A capability token in a URL goes; the readable path stays.
    assert_eq!(
        r("see https://cdn.example.com/assets/files/Zx9Qw3Er7Ty1Ui5Op0As8Df2Gh6Jk4Lz/report.pdf"),
        "see https://cdn.example.com/assets/files/[REDACTED:high_entropy]/report.pdf"
    );
    assert_eq!(kinds("aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF"), ["high_entropy"]);
}

#[test]
fn overlaps_resolve_to_one_placeholder() {
    // Equal spans: the provider-specific rule beats the generic ones.
    assert_eq!(
        r("api_key=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"),
        "api_key=[REDACTED:openai_api_key]"
    );
    assert_eq!(
        r("secret=AKIAIOSFODNN7EXAMPLE"),
        "secret=[REDACTED:aws_access_key]"
    );
    // Earliest start wins: the userinfo swallows the email-looking tail.
    let out = Redactor::new().redact("ftp://bob:pw@x@host.example.com/f");
    assert_eq!(
        out.text,
        "ftp://[REDACTED:url_credentials]@host.example.com/f"
    );
    assert_eq!(out.findings.len(), 1);
    // A JWT inside an assignment stays a single placeholder.
    assert_eq!(
        r("token: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlMTIzNDU2"),
        "token: [REDACTED:jwt]"
    );
}

#[test]
fn findings_carry_byte_ranges_of_the_original() {
    let text = "é AKIAIOSFODNN7EXAMPLE — jane@example.com 日本 ";
    let out = Redactor::new().redact(text);
    assert_eq!(
        out.findings,
        vec![
            Finding {
                kind: Kind::AwsAccessKey,
                start: 3,
                end: 23
            },
            Finding {
                kind: Kind::Email,
                start: 28,
                end: 44
            },
        ]
    );
    assert_eq!(&text[3..23], "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(&text[28..44], "jane@example.com");
    assert_eq!(
        out.text,
        "é [REDACTED:aws_access_key] — [REDACTED:email] 日本 "
    );
    // No Unicode word boundary: a key glued to CJK text is still found.
    assert_eq!(
        r("密钥AKIAIOSFODNN7EXAMPLE。"),
        "密钥[REDACTED:aws_access_key]。"
    );
}

#[test]
fn idempotent_and_total() {
    let once = r("k=AKIAIOSFODNN7EXAMPLE password=hunter22 mail a@b.co ip 10.0.0.7");
    assert_eq!(
        once,
        "k=[REDACTED:aws_access_key] password=[REDACTED:password_assignment] mail [REDACTED:email] ip [REDACTED:ipv4]"
    );
    assert_eq!(r(&once), once);
    assert!(Redactor::new().redact(&once).findings.is_empty());
    assert_eq!(r(""), "");
    assert_eq!(Redactor::new().redact("").findings, vec![]);
    assert_eq!(
        Redactor::default().redact("plain words").text,
        "plain words"
    );
}

#[test]
fn kind_names_are_distinct_placeholder_names() {
    let mut names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    for n in &names {
        let placeholder = format!("[REDACTED:{n}]");
        assert_eq!(redact(&placeholder), placeholder, "{n}");
    }
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Kind::ALL.len());
}

#[test]
fn every_kind_is_reachable() {
    let samples = corpus::samples(1, 1);
    let r = Redactor::new();
    for s in &samples {
        assert!(Kind::ALL.contains(&s.kind));
        let out = r.redact(&s.text);
        assert!(
            out.findings.iter().any(|f| f.kind == s.kind),
            "{}: {:?}",
            s.kind,
            out.text
        );
    }
    assert_eq!(samples.len(), Kind::ALL.len());
}

#[test]
fn large_input_is_handled() {
    let doc = corpus::document(3, 2_000_000);
    let out = Redactor::new().redact(&doc);
    assert!(out.findings.len() > 500);
    assert!(out.findings.windows(2).all(|w| w[0].end <= w[1].start));
    // Pathological repetition stays linear and finds nothing to hide.
    let digits = "1.2.".repeat(250_000);
    assert_eq!(r(&digits), digits);
    let colons = "a:".repeat(250_000);
    assert_eq!(r(&colons), colons);
}

mod props {
    use super::super::*;
    use proptest::prelude::*;

    fn shared() -> &'static Redactor {
        static R: OnceLock<Redactor> = OnceLock::new();
        R.get_or_init(Redactor::new)
    }

    fn pieces() -> impl Strategy<Value = String> {
        let atoms = prop::sample::select(vec![
            "AKIAIOSFODNN7EXAMPLE",
            "jane@example.com",
            "4111 1111 1111 1111",
            "10.0.0.7",
            "password=",
            "token: ",
            "\"",
            "'",
            "=",
            ":",
            "@",
            "/",
            "//",
            " ",
            "\n",
            "-----BEGIN PRIVATE KEY-----",
            "-----END PRIVATE KEY-----",
            "MIIEvQIBADANBgkq",
            "https://",
            "user:pw",
            "[REDACTED:email]",
            "[REDACTED:",
            "]",
            "é",
            "日本",
            "+44 20 7946 0958",
            "123-45-6789",
            "2001:db8::1",
            "::",
            ".",
            "sk-ant-",
            "ghp_",
            "eyJhbGciOiJIUzI1NiJ9",
            "Zx9Qw3Er7Ty1Ui5Op0As8Df2Gh6Jk4Lz",
            "0",
            "9",
            "x",
        ]);
        prop::collection::vec(atoms, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        // No regression files: this crate's tests write nothing to disk.
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn arbitrary_text_never_panics_and_ranges_are_sane(s in any::<String>()) {
            let out = shared().redact(&s);
            for f in &out.findings {
                prop_assert!(f.start < f.end && f.end <= s.len());
                prop_assert!(s.is_char_boundary(f.start) && s.is_char_boundary(f.end));
            }
            prop_assert!(out.findings.windows(2).all(|w| w[0].end <= w[1].start));
        }

        #[test]
        fn redaction_is_idempotent(s in pieces()) {
            let r = shared();
            let once = r.redact(&s);
            let twice = r.redact(&once.text);
            prop_assert_eq!(&twice.text, &once.text);
            // Rebuilding from the findings reproduces the output exactly.
            let mut rebuilt = String::new();
            let mut pos = 0;
            for f in &once.findings {
                rebuilt.push_str(&s[pos..f.start]);
                rebuilt.push_str(&format!("[REDACTED:{}]", f.kind));
                pos = f.end;
            }
            rebuilt.push_str(&s[pos..]);
            prop_assert_eq!(rebuilt, once.text);
        }
    }
}

/// The pre-filtered scan against every regex over the whole text.
fn assert_same_as_exhaustive(r: &Redactor, text: &str) {
    let fast = r.redact(text);
    EXHAUSTIVE.with(|e| e.set(true));
    let slow = r.redact(text);
    EXHAUSTIVE.with(|e| e.set(false));
    assert_eq!(fast, slow, "input: {:?}", &text[..text.len().min(300)]);
}

#[test]
fn prefilter_matches_exhaustive_scan() {
    let r = Redactor::new();
    for seed in 0..6 {
        for s in corpus::samples(seed, 8) {
            assert_same_as_exhaustive(&r, &s.text);
            // Glued to the neighbouring lines and with Windows line ends.
            assert_same_as_exhaustive(&r, &format!("x{}\r\ny", s.text.replace('\n', "\r\n")));
        }
    }
    assert_same_as_exhaustive(&r, &corpus::document(5, 300_000));
    assert_same_as_exhaustive(&r, &corpus::prose(5, 100_000));
    // Source that names many secrets and keys: this module's own.
    for src in [
        include_str!("mod.rs"),
        include_str!("rules.rs"),
        include_str!("tests.rs"),
        include_str!("checks.rs"),
        include_str!("corpus/plant.rs"),
        include_str!("corpus/values.rs"),
    ] {
        assert_same_as_exhaustive(&r, src);
    }
    for s in [
        "",
        "\n",
        "\n\n4111 1111 1111 1111\n",
        "4111 1111\n1111 1111",
        "password=\nhunter22",
        "[REDACTED:email]@x.com 10.0.0.1",
        "a:b:c 1",
        "Zx9Qw3Er7Ty1Ui5Op0As8Df2Gh6Jk4L",
        "Zx9Qw3Er7Ty1Ui5Op0As8Df2Gh6Jk4Lz",
        " Zx9Qw3Er7Ty1Ui5Op0As8Df2Gh6Jk4Lz==Zx9Qw3Er7Ty1Ui5Op0As8Df2Gh6Jk4Lz",
        "//Zx9Qw3Er7Ty1Ui5Op0As8Df2Gh6Jk4Lz",
    ] {
        assert_same_as_exhaustive(&r, s);
    }
}

/// Throughput comes from not running the regexes over text that cannot
/// hold a match: on prose they read nothing, on secret-dense prompts a few
/// times the text (every one of 25 regexes read all of it before).
#[test]
fn regexes_only_search_lines_that_can_match() {
    let r = Redactor::new();
    let searched = |text: &str| {
        REGEX_BYTES.with(|n| n.set(0));
        r.redact(text);
        REGEX_BYTES.with(Cell::get)
    };
    let prose = corpus::prose(9, 200_000);
    let n = searched(&prose);
    assert!(n <= prose.len() / 50, "prose: {n} of {} bytes", prose.len());
    let doc = corpus::document(9, 200_000);
    let n = searched(&doc);
    assert!(n <= doc.len() * 3, "prompts: {n} of {} bytes", doc.len());
}

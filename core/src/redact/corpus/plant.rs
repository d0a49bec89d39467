//! Each kind's values in the contexts prompts show them in.

use super::values::{card, iban, ipv4, ipv6, jwt, password, pem, phone, ssn};
use super::{base64, Rng, B62, B64, B64URL, DIGITS, HEX};
use crate::redact::Kind;

/// Returns (text before, secret, text after) for one value of `kind`.
pub fn plant(kind: Kind, rng: &mut Rng) -> (String, String, String) {
    let s = |x: &str| x.to_string();
    let wrap = |rng: &mut Rng, v: String, ctx: &[(&str, &str)]| {
        let (a, b) = *rng.pick(ctx);
        (s(a), v, s(b))
    };
    match kind {
        Kind::AnthropicApiKey => {
            let v = format!(
                "sk-ant-{}-{}AA",
                rng.pick(&["api03", "admin01", "oat01"]),
                rng.chars(B64URL, 93)
            );
            wrap(
                rng,
                v,
                &[
                    ("export ANTHROPIC_API_KEY=", ""),
                    ("x-api-key: ", "\n"),
                    ("my key is ", " — keep it safe"),
                    ("\"apiKey\": \"", "\","),
                ],
            )
        }
        Kind::OpenaiApiKey => {
            let v = match rng.below(3) {
                0 => format!("sk-{}", rng.chars(B62, 48)),
                1 => format!("sk-proj-{}", rng.chars_in(B64URL, 100, 160)),
                _ => format!("sk-svcacct-{}", rng.chars(B64URL, 120)),
            };
            wrap(
                rng,
                v,
                &[
                    ("OPENAI_API_KEY=", ""),
                    ("client = OpenAI(api_key=\"", "\")"),
                    ("Authorization: Bearer ", ""),
                    ("use ", " for the eval run"),
                ],
            )
        }
        Kind::AwsAccessKey => {
            let v = format!(
                "{}{}",
                rng.pick(&["AKIA", "ASIA"]),
                rng.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
            );
            wrap(
                rng,
                v,
                &[
                    ("aws_access_key_id = ", "\n"),
                    ("export AWS_ACCESS_KEY_ID=", ""),
                    ("\"AccessKeyId\": \"", "\","),
                    ("the key ", " was rotated"),
                ],
            )
        }
        Kind::AwsSecretKey => {
            let v = rng.chars(B64, 40);
            wrap(
                rng,
                v,
                &[
                    ("aws_secret_access_key = ", "\n"),
                    ("export AWS_SECRET_ACCESS_KEY=", ""),
                    ("\"SecretAccessKey\": \"", "\","),
                    ("AWS_SECRET_ACCESS_KEY: '", "'"),
                ],
            )
        }
        Kind::GithubToken => {
            let v = if rng.below(4) == 0 {
                format!("github_pat_{}_{}", rng.chars(B62, 22), rng.chars(B62, 59))
            } else {
                format!(
                    "{}{}",
                    rng.pick(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]),
                    rng.chars(B62, 36)
                )
            };
            wrap(
                rng,
                v,
                &[
                    ("GITHUB_TOKEN=", ""),
                    ("git clone https://", "@github.com/acme/app.git"),
                    ("token: ", "\n"),
                    ("gh auth login --with-token <<< ", ""),
                ],
            )
        }
        Kind::GitlabToken => {
            let v = format!("glpat-{}", rng.chars(B64URL, 20));
            wrap(
                rng,
                v,
                &[
                    ("PRIVATE-TOKEN: ", ""),
                    ("CI_JOB_TOKEN=", " make"),
                    ("use ", " to push"),
                ],
            )
        }
        Kind::SlackToken => {
            let v = format!(
                "{}-{}-{}-{}",
                rng.pick(&["xoxb", "xoxp", "xoxa", "xoxr"]),
                rng.digits(12),
                rng.digits(13),
                rng.chars(B62, 24)
            );
            wrap(
                rng,
                v,
                &[
                    ("SLACK_BOT_TOKEN=", ""),
                    ("slack.WebClient(\"", "\")"),
                    ("posting with ", " fails"),
                ],
            )
        }
        Kind::SlackWebhook => {
            let v = format!(
                "https://hooks.slack.com/services/T{}/B{}/{}",
                rng.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 8),
                rng.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10),
                rng.chars(B62, 24)
            );
            wrap(
                rng,
                v,
                &[
                    ("curl -X POST ", " -d @msg.json"),
                    ("webhook_url: ", "\n"),
                    ("(", ")"),
                ],
            )
        }
        Kind::StripeKey => {
            let v = format!(
                "{}{}",
                rng.pick(&["sk_live_", "rk_live_", "sk_test_"]),
                rng.chars_in(B62, 24, 99)
            );
            wrap(
                rng,
                v,
                &[
                    ("STRIPE_SECRET_KEY=", ""),
                    ("stripe.api_key = \"", "\""),
                    ("charge with ", " now"),
                ],
            )
        }
        Kind::GoogleApiKey => {
            let v = format!("AIza{}", rng.chars(B64URL, 35));
            wrap(
                rng,
                v,
                &[
                    (
                        "https://maps.googleapis.com/maps/api/geocode/json?key=",
                        "&address=x",
                    ),
                    ("GOOGLE_API_KEY=", ""),
                    ("apiKey: \"", "\","),
                ],
            )
        }
        Kind::AzureStorageKey => {
            let v = base64(&rng.bytes(64), B64, true);
            wrap(
                rng,
                v,
                &[
                    (
                        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=",
                        ";EndpointSuffix=core.windows.net",
                    ),
                    ("AccountKey=", ""),
                ],
            )
        }
        Kind::NpmToken => {
            let v = format!("npm_{}", rng.chars(B62, 36));
            wrap(
                rng,
                v,
                &[
                    ("//registry.npmjs.org/:_authToken=", "\n"),
                    ("NPM_TOKEN=", ""),
                    ("publish with ", ""),
                ],
            )
        }
        Kind::PypiToken => {
            let v = format!("pypi-AgEIcHlwaS5vcmc{}", rng.chars_in(B64URL, 60, 160));
            wrap(
                rng,
                v,
                &[
                    ("password = ", "\n"),
                    ("TWINE_PASSWORD=", ""),
                    ("upload token ", " expired"),
                ],
            )
        }
        Kind::PrivateKey => {
            let v = pem(rng);
            wrap(
                rng,
                v,
                &[
                    ("key file:\n", "\n"),
                    ("\"private_key\": \"", "\","),
                    ("", "\n"),
                ],
            )
        }
        Kind::Jwt => {
            let v = jwt(rng);
            wrap(
                rng,
                v,
                &[
                    ("Authorization: Bearer ", ""),
                    ("the cookie session=", "; Path=/"),
                    ("decode ", " please"),
                ],
            )
        }
        Kind::UrlCredentials => {
            let user = format!(
                "{}{}",
                rng.pick(&["admin", "app", "deploy", "postgres", "svc_ci"]),
                rng.chars_in(DIGITS, 0, 2)
            );
            let v = format!(
                "{user}:{}",
                password(rng).replace(['/', '?', '#', '[', ']', '"', '\'', '<', '>'], "x")
            );
            let scheme = *rng.pick(&[
                "postgres",
                "postgresql",
                "mysql",
                "redis",
                "amqp",
                "https",
                "mongodb+srv",
                "ftp",
            ]);
            let host = *rng.pick(&[
                "db.internal:5432/app",
                "cache.local:6379/0",
                "mq.example.net/vhost",
                "example.com/path?q=1",
            ]);
            (format!("DATABASE_URL={scheme}://"), v, format!("@{host}"))
        }
        Kind::PasswordAssignment => {
            let v = password(rng);
            wrap(
                rng,
                v,
                &[
                    ("DB_PASSWORD=", ""),
                    ("password: ", "\n"),
                    ("\"password\": \"", "\""),
                    ("api_key = '", "'"),
                    ("export SECRET_TOKEN=\"", "\""),
                    ("client_secret: ", "\n"),
                    ("PGPASSWORD=", " psql -h db"),
                    ("passwd: \"", "\""),
                    ("apiKey: \"", "\","),
                    ("docker run -e MYSQL_ROOT_PASSWORD=", " mysql:8"),
                    ("$config['db_pass'] => '", "';"),
                    ("let token = \"", "\";"),
                    ("export SECRET_TOKEN=", "\n"),
                    ("password = \"", "\"\n"),
                    ("mysql -u root --password=", " app"),
                ],
            )
        }
        Kind::TallyToken => {
            let v = format!(
                "{}{}",
                rng.pick(&["tly_inst_", "tly_agent_"]),
                rng.chars(HEX, 64)
            );
            wrap(
                rng,
                v,
                &[
                    ("tally install ", ""),
                    ("TALLY_TOKEN=", ""),
                    ("Authorization: Bearer ", ""),
                ],
            )
        }
        Kind::HighEntropy => {
            let v = match rng.below(3) {
                0 => base64(&rng.bytes_in(24, 48), B64, true),
                1 => base64(&rng.bytes_in(24, 48), B64URL, false),
                _ => rng.chars_in(B62, 32, 64),
            };
            wrap(
                rng,
                v,
                &[
                    ("the signing value is ", " ok"),
                    ("X-Custom-Auth: ", "\n"),
                    ("ENCRYPTED_BLOB=", ""),
                    ("let nonce = \"", "\";"),
                    ("-H 'X-Hub: ", "'"),
                    ("see https://files.example.com/d/", " for it"),
                ],
            )
        }
        Kind::Email => {
            let v = format!(
                "{}{}{}@{}",
                rng.pick(&[
                    "jane",
                    "j.smith",
                    "max_mustermann",
                    "o'brien",
                    "dev+ci",
                    "anna.maria"
                ])
                .replace('\'', ""),
                rng.pick(&["", ".", "_"]).to_string() + &rng.chars_in(DIGITS, 0, 2),
                rng.pick(&["", "x"]),
                rng.pick(&[
                    "example.com",
                    "corp.io",
                    "mail.co.uk",
                    "gmail.com",
                    "uni-bonn.de",
                    "sub.domain.org"
                ])
            );
            let v = v.replace("..", ".").replace(".@", "@").replace("_@", "@");
            wrap(
                rng,
                v,
                &[
                    ("mail ", " about it"),
                    ("Author: Jane <", ">"),
                    ("\"email\": \"", "\""),
                    ("contact: ", "\n"),
                ],
            )
        }
        Kind::Phone => {
            let v = phone(rng);
            wrap(
                rng,
                v,
                &[
                    ("call me at ", " tomorrow"),
                    ("Tel: ", "\n"),
                    ("\"phone\": \"", "\""),
                    ("(mobile ", ")"),
                ],
            )
        }
        Kind::CreditCard => {
            let v = card(rng);
            wrap(
                rng,
                v,
                &[
                    ("card number ", " exp 12/27"),
                    ("\"pan\": \"", "\""),
                    ("charged ", " twice"),
                ],
            )
        }
        Kind::Iban => {
            let v = iban(rng);
            wrap(
                rng,
                v,
                &[
                    ("IBAN: ", "\n"),
                    ("pay to ", " by Friday"),
                    ("\"iban\": \"", "\""),
                ],
            )
        }
        Kind::Ipv4 => {
            let v = ipv4(rng);
            wrap(
                rng,
                v,
                &[
                    ("ssh ubuntu@", ""),
                    ("connect to ", ":8080 failed"),
                    ("client_ip=", " status=500"),
                    ("from ", " port 22"),
                ],
            )
        }
        Kind::Ipv6 => {
            let v = ipv6(rng);
            wrap(
                rng,
                v,
                &[
                    ("listen [", "]:443"),
                    ("peer ", " disconnected"),
                    ("addr=", "\n"),
                ],
            )
        }
        Kind::UsSsn => {
            let v = ssn(rng);
            wrap(
                rng,
                v,
                &[
                    ("SSN ", " on file"),
                    ("\"ssn\": \"", "\""),
                    ("social security number: ", "\n"),
                ],
            )
        }
    }
}

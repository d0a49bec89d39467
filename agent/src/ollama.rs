//! Categorize-local: a local Ollama labels each prompt; the prompt never
//! leaves the machine. When Ollama is unreachable the event ships without a
//! category and `tally status` says why.

use std::collections::HashMap;
use std::time::Duration;

use tally_core::categorize::{ollama_request, parse_ollama_response};
use tally_core::event::{Categorization, PrivacyMode};

use crate::config::Config;

pub struct Ollama {
    url: String,
    model: String,
    agent: ureq::Agent,
    /// Why Ollama could not be used in this run, if it could not.
    pub down: Option<String>,
    pub calls: u64,
    pub categorized: u64,
    cache: HashMap<u64, Option<Categorization>>,
}

impl Ollama {
    /// A client when the team's mode is categorize-local, else `None`.
    pub fn for_config(cfg: &Config) -> Option<Ollama> {
        (cfg.effective_mode() == PrivacyMode::CategorizeLocal).then(|| {
            let (url, model) = cfg.ollama();
            Ollama::new(&url, &model)
        })
    }

    pub fn new(url: &str, model: &str) -> Ollama {
        Ollama {
            url: url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(3))
                // A local 8B model on a laptop CPU can take a while per prompt.
                .timeout(Duration::from_secs(120))
                .build(),
            down: None,
            calls: 0,
            categorized: 0,
            cache: HashMap::new(),
        }
    }

    /// Category of one prompt; `None` when Ollama is down or answers badly.
    /// Several requests answering one prompt cost one call.
    pub fn categorize(&mut self, prompt: &str) -> Option<Categorization> {
        let key = crate::tail::fnv1a(prompt.as_bytes());
        if let Some(c) = self.cache.get(&key) {
            return c.clone();
        }
        if self.down.is_some() {
            return None;
        }
        self.calls += 1;
        let resp = self
            .agent
            .post(&format!("{}/api/chat", self.url))
            .send_json(ollama_request(&self.model, prompt));
        let result = match resp {
            Ok(r) => match r.into_string() {
                Ok(body) => parse_ollama_response(&body).map_err(|e| (false, e)),
                Err(e) => Err((false, e.to_string())),
            },
            Err(ureq::Error::Status(code, r)) => Err((
                // 404 = the model is not pulled: nothing later will work either.
                code == 404,
                format!(
                    "HTTP {code}: {}",
                    r.into_string().unwrap_or_default().trim()
                ),
            )),
            Err(e) => Err((true, e.to_string())),
        };
        let c = match result {
            Ok(c) => {
                self.categorized += 1;
                Some(c)
            }
            Err((fatal, why)) => {
                if fatal {
                    self.down = Some(format!("Ollama at {} ({}): {why}", self.url, self.model));
                }
                None
            }
        };
        self.cache.insert(key, c.clone());
        c
    }
}

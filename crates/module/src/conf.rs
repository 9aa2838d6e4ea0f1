//! The module's configuration records: per server, the parsed configuration plus a compiled
//! regular expression per `WSGIScriptAliasMatch`; per directory, `rwsgi_core`'s `DirConfig`.

use rwsgi_apache::conf::Merge;
use rwsgi_apache::regex::Regex;
use rwsgi_core::config::{AliasPattern, ServerConfig};
use std::sync::Arc;

/// Our per-server record: the parsed configuration plus a compiled regex per alias.
#[derive(Default)]
pub struct ServerConf {
    pub config: ServerConfig,
    pub regexes: Vec<Option<Arc<Regex>>>,
}

impl ServerConf {
    /// Compiles the regexes of aliases added since the last call.
    pub fn compile_new_patterns(&mut self) -> Result<(), String> {
        while self.regexes.len() < self.config.aliases.len() {
            let re = match &self.config.aliases[self.regexes.len()].pattern {
                AliasPattern::Regex(p) => match Regex::compile(p) {
                    Ok(r) => Some(Arc::new(r)),
                    Err(e) => {
                        self.config.aliases.pop();
                        return Err(e);
                    }
                },
                AliasPattern::Prefix(_) => None,
            };
            self.regexes.push(re);
        }
        Ok(())
    }
}

impl Merge for ServerConf {
    fn merge(base: &ServerConf, add: &ServerConf) -> ServerConf {
        let mut regexes = add.regexes.clone();
        regexes.extend(base.regexes.iter().cloned());
        ServerConf {
            config: ServerConfig::merge(&base.config, &add.config),
            regexes,
        }
    }
}

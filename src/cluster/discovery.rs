//! Discovery: the `manage` argument that says which engines form the cluster.

use super::connector::EngineAddr;

/// The embedded default: the local engine.
pub const DEFAULT_ENGINE: &str = "unix:///var/run/docker.sock";

/// A parsed discovery argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// One engine URL: `tcp://h:p`, `unix:///path`.
    Engine(EngineAddr),
    /// `nodes://h1:p1,h2:p2`.
    Nodes(Vec<EngineAddr>),
}

impl Discovery {
    pub fn parse(s: &str) -> Result<Discovery, String> {
        if s.starts_with("token://") {
            return Err(format!(
                "{s}: token discovery was Docker Hub's hosted service, shut down in 2018; \
                 list the engines with nodes://HOST:PORT,HOST:PORT or file:///PATH instead"
            ));
        }
        if let Some(list) = s.strip_prefix("nodes://") {
            let nodes = list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(EngineAddr::parse)
                .collect::<Result<Vec<_>, _>>()?;
            if nodes.is_empty() {
                return Err(format!("{s}: nodes:// needs at least one HOST:PORT"));
            }
            return Ok(Discovery::Nodes(nodes));
        }
        for scheme in ["file://", "etcd://", "consul://", "zk://"] {
            if s.starts_with(scheme) {
                return Err(format!(
                    "{s}: {scheme} discovery is not supported by this version of mtswarm; \
                     give the engine URL or nodes://HOST:PORT"
                ));
            }
        }
        EngineAddr::parse(s).map(Discovery::Engine)
    }

    /// The engines named, in order.
    pub async fn engines(&self) -> Result<Vec<EngineAddr>, String> {
        self.static_engines().ok_or_else(|| "this discovery is not static".to_string())
    }

    /// The engines of a discovery that never changes.
    pub fn static_engines(&self) -> Option<Vec<EngineAddr>> {
        Some(match self {
            Discovery::Engine(a) => vec![a.clone()],
            Discovery::Nodes(list) => list.clone(),
        })
    }

    /// True for discoveries that change while mtswarm runs.
    pub fn follows(&self) -> bool {
        false
    }
}

impl Default for Discovery {
    fn default() -> Discovery {
        Discovery::Engine(EngineAddr::parse(DEFAULT_ENGINE).expect("a valid constant"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let got = match Discovery::parse(input) {
            Ok(d) => format!("{:?}", d.static_engines().unwrap().iter().map(|a| a.to_string()).collect::<Vec<_>>()),
            Err(e) => format!("error: {e}"),
        };
        assert!(got.contains(expected), "{input}: {got}");
    }

    #[test]
    fn parses_discovery() {
        check("unix:///var/run/docker.sock", r#"["unix:///var/run/docker.sock"]"#);
        check("tcp://127.0.0.1:23750", r#"["tcp://127.0.0.1:23750"]"#);
        check("nodes://a:1,b:2", r#"["tcp://a:1", "tcp://b:2"]"#);
        check("nodes://", "error: nodes://: nodes:// needs at least one");
        check("token://abc", "error: token://abc: token discovery was Docker Hub's hosted service");
        check("file:///tmp/x", "error: file:///tmp/x: file:// discovery is not supported");
    }
}

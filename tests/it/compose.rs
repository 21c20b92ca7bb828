//! docker-compose through the gateway (issue 4): Debian's docker-compose 1.29 (docker-py) brings a two-service
//! project with a network and a named volume up and down for two tenants that use the same project name, in
//! different directories; each sees only its own.
//!
//! docker-compose reads the auth headers (`HttpHeaders`) from `$DOCKER_CONFIG/config.json`, so each tenant gets
//! a config directory of its own, and `DOCKER_HOST` points at the gateway.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

const COMPOSE: &str = "/usr/bin/docker-compose";

/// How long one docker-compose command may take: `up` creates a network, a volume and two containers.
const COMPOSE_TIMEOUT: Duration = Duration::from_secs(120);

/// One tenant's docker-compose: the gateway, a config directory with the tenant's headers, a project directory.
struct Compose {
    host: String,
    config: PathBuf,
    project_dir: PathBuf,
    project: String,
}

impl Compose {
    fn new(t: &Test, client: &Client, project: &str, compose_file: &str) -> Compose {
        let who = &client.tenant_id;
        let config = t.path(&format!("compose-config-{who}"));
        fs::create_dir_all(&config).unwrap();
        let headers = serde_json::json!({
            "HttpHeaders": {"X-Auth-Token": client.token(), "X-Auth-TenantId": client.tenant_id}
        });
        fs::write(config.join("config.json"), headers.to_string()).unwrap();
        let project_dir = t.path(&format!("compose-project-{who}"));
        fs::create_dir_all(&project_dir).unwrap();
        fs::write(project_dir.join("docker-compose.yml"), compose_file).unwrap();
        Compose { host: client.host().to_string(), config, project_dir, project: project.to_string() }
    }

    /// Runs `docker-compose -p PROJECT ARGS` in the project directory, killing it after `COMPOSE_TIMEOUT`.
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(COMPOSE);
        for var in ["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "COMPOSE_FILE"] {
            cmd.env_remove(var);
        }
        cmd.env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", &self.config)
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            .current_dir(&self.project_dir)
            .args(["-p", &self.project])
            .args(args);
        let desc = format!(
            "DOCKER_HOST={} docker-compose -p {} {} (in {})",
            self.host,
            self.project,
            args.join(" "),
            self.project_dir.display()
        );
        run_bounded(cmd, desc, COMPOSE_TIMEOUT)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.success(), "expected success: {out}");
        out.stdout.trim().to_string()
    }
}

fn compose_file(image: &str) -> String {
    format!(
        r#"version: "2.4"
services:
  web:
    image: {image}
    command: sleep 300
    networks: [backend]
  db:
    image: {image}
    command: sleep 300
    networks: [backend]
    volumes:
      - data:/data
networks:
  backend: {{}}
volumes:
  data: {{}}
"#
    )
}

it_test!(
    two_tenants_bring_up_and_down_projects_of_the_same_name,
    mtswarm_only("tenant isolation under docker-compose"),
    |t, gw, alice, bob| {
        // docker-compose keeps only [-_a-z0-9] of a project name; the test's name is made of those.
        let project = t.name("proj");
        let file = compose_file(image());
        let alice_compose = Compose::new(&t, &alice, &project, &file);
        let bob_compose = Compose::new(&t, &bob, &project, &file);
        let (web, db) = (format!("{project}_web_1"), format!("{project}_db_1"));
        let (backend, data) = (format!("{project}_backend"), format!("{project}_data"));
        let project_label = format!("label=com.docker.compose.project={project}");

        alice_compose.ok(&["up", "-d"]);
        bob_compose.ok(&["up", "-d"]);

        for (client, compose, who) in [(&alice, &alice_compose, "alice"), (&bob, &bob_compose, "bob")] {
            // docker-compose's own view: two containers, the tenant's.
            let ids = lines(&compose.ok(&["ps", "-q"]));
            assert_eq!(ids.len(), 2, "{who}'s docker-compose ps -q: {ids:?}");
            for id in &ids {
                let owner = engine_ok(&["inspect", "--format", "{{index .Config.Labels \"mtswarm.tenant\"}}", id]);
                assert_eq!(owner, client.tenant_id, "{who}'s docker-compose ps shows {id} of {owner}");
            }
            let ps = compose.ok(&["ps"]);
            assert!(ps.contains(&web) && ps.contains(&db), "{who}'s docker-compose ps: {ps}");

            // The docker CLI's view: the same two, by their unscoped names.
            let names = client.ok(&["ps", "--format", "{{.Names}}"]);
            let mut expected = vec![db.clone(), web.clone()];
            expected.sort();
            assert_eq!(sorted_lines(&names), expected, "{who}'s docker ps");
            let names = client.ok(&["ps", "-a", "--filter", &project_label, "--format", "{{.Names}}"]);
            assert_eq!(sorted_lines(&names), expected, "{who}'s docker ps --filter {project_label}");
            let mut nets = vec![backend.clone(), "bridge".to_string(), "none".to_string()];
            nets.sort();
            assert_eq!(sorted_lines(&client.ok(&["network", "ls", "--format", "{{.Name}}"])), nets, "{who}'s networks");
            assert_eq!(client.ok(&["volume", "ls", "--format", "{{.Name}}"]), data, "{who}'s volumes");

            // On the engine, under the tenant's engine-side names.
            for name in [&web, &db] {
                let state = engine_ok(&["inspect", "--format", "{{.State.Status}}", &client.scoped(name)]);
                assert_eq!(state, "running", "{who}'s {name}");
            }
            engine_ok(&["network", "inspect", "--format", "{{.Id}}", &client.scoped(&backend)]);
            engine_ok(&["volume", "inspect", "--format", "{{.Name}}", &client.scoped(&data)]);
        }

        // The two projects do not share their volume, and each web finds its own db by the service's name.
        alice.ok(&["exec", &db, "sh", "-c", "echo alice > /data/who"]);
        assert_eq!(bob.ok(&["exec", &db, "ls", "-A", "/data"]), "", "bob's db sees alice's volume");
        for (client, who) in [(&alice, "alice"), (&bob, "bob")] {
            let db_ip = client.ok(&[
                "inspect",
                "--format",
                &format!("{{{{(index .NetworkSettings.Networks \"{backend}\").IPAddress}}}}"),
                &db,
            ]);
            let out = client.docker(&["exec", &web, "ping", "-c", "1", "-W", "5", "db"]);
            assert!(out.success() && out.stdout.contains(&db_ip), "{who}'s web does not reach its db ({db_ip}): {out}");
        }

        // Alice's down takes hers and leaves bob's running.
        alice_compose.ok(&["down", "-v", "-t", "1"]);
        assert_eq!(alice.ok(&["ps", "-a", "-q"]), "");
        assert_eq!(alice.ok(&["volume", "ls", "-q"]), "");
        assert_eq!(lines(&alice_compose.ok(&["ps", "-q"])), Vec::<String>::new());
        for name in [&web, &db] {
            assert!(
                !engine_docker(&["inspect", &alice.scoped(name)]).success(),
                "alice's {name} is still on the engine"
            );
            let state = engine_ok(&["inspect", "--format", "{{.State.Status}}", &bob.scoped(name)]);
            assert_eq!(state, "running", "bob's {name} after alice's down");
        }
        assert!(!engine_docker(&["network", "inspect", &alice.scoped(&backend)]).success());
        assert!(!engine_docker(&["volume", "inspect", &alice.scoped(&data)]).success());
        engine_ok(&["network", "inspect", "--format", "{{.Id}}", &bob.scoped(&backend)]);
        engine_ok(&["volume", "inspect", "--format", "{{.Name}}", &bob.scoped(&data)]);
        assert_eq!(lines(&bob_compose.ok(&["ps", "-q"])).len(), 2);

        bob_compose.ok(&["down", "-v", "-t", "1"]);
        assert_eq!(bob.ok(&["ps", "-a", "-q"]), "");
        assert_eq!(bob.ok(&["volume", "ls", "-q"]), "");
        let left = engine_ok(&["ps", "-a", "-q", "--filter", &project_label]);
        assert_eq!(left, "", "containers of the project are left on the engine");
        let left = engine_ok(&["network", "ls", "-q", "--filter", &format!("name={project}")]);
        assert_eq!(left, "", "networks of the project are left on the engine");
    }
);

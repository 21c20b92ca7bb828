//! Authentication with the real Keystone of the test bed (`scripts/testbed.sh up keystone`: Keystone 22 on
//! http://127.0.0.1:35357), through the real docker CLI and raw HTTP: project-scoped and unscoped tokens,
//! garbage, revoked and expired tokens, the members and admin tenants, a `/v2.0` URL, a service account, the
//! cache (one Keystone call for concurrent checks of one token) and Keystone slow, stopped and started again.
//!
//! The fixture (`Ks`) makes each test's own projects and users over Keystone's REST API with a tiny HTTP client,
//! and deletes them after. Keystone is single-threaded and hashes passwords with bcrypt (about 0.6 s a user or a
//! password token), so tests make few calls. Every test holds `KEYSTONE` (see there): one test stops Keystone,
//! and the others must not run meanwhile.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::auth::*;
use crate::support::*;

/// The one lock of the Keystone tests: all 13 tests of this file take it (`lock(keystone_lock)` in `it_test!`),
/// and no other test does, so only one Keystone test runs at a time. Why: `keystone_down_cached_tokens_keep_
/// working_and_new_ones_get_503` stops the test bed's Keystone for a while, and any other Keystone test would
/// fail meanwhile. It also keeps the tests' calls from queueing behind each other at the single-threaded
/// Keystone (a bcrypt hash, about 0.6 s, per user or password token), which matters to
/// `keystone_expired_token_is_refused_even_when_cached`: its setup must end within the token's lifetime.
static KEYSTONE: Mutex<()> = Mutex::new(());

fn keystone_lock() -> MutexGuard<'static, ()> {
    KEYSTONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------------------------
// The test bed's Keystone
// ---------------------------------------------------------------------------------------------------------

/// What the test bed's env file says about Keystone.
struct KeystoneEnv {
    /// `http://127.0.0.1:35357/v3`.
    url: String,
    /// `127.0.0.1:35357`.
    addr: String,
    admin_user: String,
    admin_password: String,
    admin_project: String,
    service_user: String,
    service_password: String,
    service_project: String,
}

fn keystone_env() -> &'static KeystoneEnv {
    static ENV: OnceLock<KeystoneEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let get = |key: &str| {
            testbed_env().get(key).cloned().unwrap_or_else(|| {
                panic!("{} has no {key}: the Keystone tests need `scripts/testbed.sh up keystone`", testbed_env_path())
            })
        };
        let url = get("MTSWARM_KEYSTONE_URL").trim_end_matches('/').to_string();
        let addr = url
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("MTSWARM_KEYSTONE_URL {url} is not http://HOST:PORT/..."))
            .to_string();
        KeystoneEnv {
            addr,
            admin_user: get("MTSWARM_KEYSTONE_ADMIN_USER"),
            admin_password: get("MTSWARM_KEYSTONE_ADMIN_PASSWORD"),
            admin_project: get("MTSWARM_KEYSTONE_ADMIN_PROJECT"),
            service_user: get("MTSWARM_KEYSTONE_SERVICE_USER"),
            service_password: get("MTSWARM_KEYSTONE_SERVICE_PASSWORD"),
            service_project: get("MTSWARM_KEYSTONE_SERVICE_PROJECT"),
            url,
        }
    })
}

/// One answer of Keystone.
struct KsResponse {
    status: u16,
    /// Header names lowercased.
    headers: Vec<(String, String)>,
    body: String,
}

impl KsResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("Keystone's answer is not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request to Keystone with `Connection: close` (its wsgiref server closes anyway). Waits up to
/// 60 s for Keystone to accept, in case another user of the test bed is restarting it.
fn ks_call(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&serde_json::Value>) -> KsResponse {
    ks_request(method, path, headers, body).unwrap_or_else(|e| panic!("{e}"))
}

/// `ks_call` without panicking, for drop guards.
fn ks_request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> Result<KsResponse, String> {
    let env = keystone_env();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut conn = loop {
        match TcpStream::connect(&env.addr) {
            Ok(conn) => break conn,
            Err(e) if Instant::now() < deadline => {
                eprintln!("Keystone at {} does not accept ({e}); retrying", env.addr);
                thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(format!("Keystone at {} does not accept: {e}", env.addr)),
        }
    };
    conn.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
    let body = body.map(|b| b.to_string());
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n", env.addr);
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = &body {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    } else if method != "GET" && method != "HEAD" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    if let Some(body) = &body {
        req.push_str(body);
    }
    conn.write_all(req.as_bytes()).map_err(|e| format!("{method} {path} to Keystone: {e}"))?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).map_err(|e| format!("{method} {path} to Keystone: reading: {e}"))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("{method} {path}: bad answer {text:?}"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{method} {path}: bad status line in {text:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(KsResponse { status, headers, body: body.to_string() })
}

/// `secs` since the epoch as ISO 8601 UTC, `YYYY-MM-DDTHH:MM:SSZ`.
fn iso8601(secs: u64) -> String {
    // Howard Hinnant's civil_from_days.
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A Keystone user of one test.
struct User {
    id: String,
    password: String,
}

/// One test's Keystone objects, made with an admin token and deleted on drop.
struct Ks<'t> {
    test: &'t Test,
    admin: String,
    projects: Mutex<Vec<String>>,
    users: Mutex<Vec<String>>,
    /// `(user id, credential id)` of application credentials.
    app_creds: Mutex<Vec<(String, String)>>,
}

impl<'t> Ks<'t> {
    fn new(test: &'t Test) -> Ks<'t> {
        // One admin token for the whole run (it lives an hour): each password login costs Keystone a bcrypt.
        static ADMIN: OnceLock<String> = OnceLock::new();
        let admin = ADMIN
            .get_or_init(|| {
                let env = keystone_env();
                let user = serde_json::json!({
                    "name": env.admin_user, "domain": {"id": "default"}, "password": env.admin_password});
                let scope = serde_json::json!({"project": {"name": env.admin_project, "domain": {"id": "default"}}});
                Self::password_token(user, Some(scope))
            })
            .clone();
        Ks {
            test,
            admin,
            projects: Mutex::new(Vec::new()),
            users: Mutex::new(Vec::new()),
            app_creds: Mutex::new(Vec::new()),
        }
    }

    /// `POST /v3/auth/tokens` with the password method; the token is the `X-Subject-Token` header.
    fn password_token(user: serde_json::Value, scope: Option<serde_json::Value>) -> String {
        let mut auth = serde_json::json!({"identity": {"methods": ["password"], "password": {"user": user}}});
        if let Some(scope) = scope {
            auth["scope"] = scope;
        }
        let r = ks_call("POST", "/v3/auth/tokens", &[], Some(&serde_json::json!({ "auth": auth })));
        assert_eq!(r.status, 201, "Keystone refused a password token: {}", r.body);
        r.header("x-subject-token").expect("no X-Subject-Token").to_string()
    }

    fn admin_call(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> KsResponse {
        ks_call(method, path, &[("X-Auth-Token", &self.admin)], body)
    }

    /// A new project named `<tag>-<suffix>`; returns its id.
    fn project(&self, suffix: &str) -> String {
        let name = self.test.name(suffix);
        let body = serde_json::json!({"project": {"name": name, "domain_id": "default"}});
        let r = self.admin_call("POST", "/v3/projects", Some(&body));
        assert_eq!(r.status, 201, "creating project {name}: {}", r.body);
        let id = r.json()["project"]["id"].as_str().expect("no project id").to_string();
        self.projects.lock().unwrap().push(id.clone());
        id
    }

    /// A new user named `<tag>-<suffix>` in the Default domain.
    fn user(&self, suffix: &str) -> User {
        let name = self.test.name(suffix);
        let password = secret();
        let body = serde_json::json!({"user": {"name": name, "domain_id": "default", "password": password}});
        let r = self.admin_call("POST", "/v3/users", Some(&body));
        assert_eq!(r.status, 201, "creating user {name}: {}", r.body);
        let id = r.json()["user"]["id"].as_str().expect("no user id").to_string();
        self.users.lock().unwrap().push(id.clone());
        User { id, password }
    }

    /// A new project and a new user who is a member of it (`project`, `user` and `grant`, in that order).
    fn member(&self, project_suffix: &str, user_suffix: &str) -> (String, User) {
        let project = self.project(project_suffix);
        let user = self.user(user_suffix);
        self.grant(&user, &project);
        (project, user)
    }

    /// Gives `user` the role `member` on `project`.
    fn grant(&self, user: &User, project: &str) {
        let role = member_role(self);
        let r = self.admin_call("PUT", &format!("/v3/projects/{project}/users/{}/roles/{role}", user.id), None);
        assert_eq!(r.status, 204, "granting member on {project}: {}", r.body);
    }

    /// A token of `user` scoped to `project`.
    fn scoped_token(&self, user: &User, project: &str) -> String {
        Self::password_token(
            serde_json::json!({"id": user.id, "password": user.password}),
            Some(serde_json::json!({"project": {"id": project}})),
        )
    }

    /// An unscoped token of `user` (users made here have no default project).
    fn unscoped_token(&self, user: &User) -> String {
        Self::password_token(serde_json::json!({"id": user.id, "password": user.password}), None)
    }

    /// Revokes `token` (`DELETE /v3/auth/tokens`).
    fn revoke(&self, token: &str) {
        let r =
            ks_call("DELETE", "/v3/auth/tokens", &[("X-Auth-Token", &self.admin), ("X-Subject-Token", token)], None);
        assert_eq!(r.status, 204, "revoking a token: {}", r.body);
    }

    /// Keystone's own view of `token` (validated by the admin): its status and body.
    fn validate(&self, token: &str) -> KsResponse {
        ks_call("GET", "/v3/auth/tokens?nocatalog", &[("X-Auth-Token", &self.admin), ("X-Subject-Token", token)], None)
    }

    /// A token of `user` on `project` that expires at `expires_at` (seconds since the epoch, in the future).
    ///
    /// Keystone 22 gives a password token the configured lifetime (3600 s here) and takes no `expires_at` in the
    /// request, but it caps a token issued for an application credential at the credential's `expires_at`
    /// (CVE-2022-2447). So: a project token, an application credential expiring then, and a token for that.
    fn expiring_token(&self, user: &User, project: &str, expires_at: u64) -> String {
        let scoped = self.scoped_token(user, project);
        let body = serde_json::json!({"application_credential": {
            "name": format!("{}-expiring-{expires_at}", self.test.tag), "expires_at": iso8601(expires_at)}});
        let r = ks_call(
            "POST",
            &format!("/v3/users/{}/application_credentials", user.id),
            &[("X-Auth-Token", &scoped)],
            Some(&body),
        );
        assert_ne!(
            r.status, 409,
            "creating an application credential: {}. If Keystone's log says `UNIQUE constraint failed: \
             application_credential_role`, rows of deleted credentials were left behind (see `Ks::drop`); repair: \
             sqlite3 keystone.db 'DELETE FROM application_credential_role WHERE application_credential_id NOT IN \
             (SELECT internal_id FROM application_credential)'",
            r.body
        );
        assert_eq!(r.status, 201, "creating an application credential: {}", r.body);
        let cred = r.json();
        let id = cred["application_credential"]["id"].as_str().expect("no credential id").to_string();
        self.app_creds.lock().unwrap().push((user.id.clone(), id.clone()));
        let secret = cred["application_credential"]["secret"].as_str().expect("no credential secret").to_string();
        let auth = serde_json::json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": id, "secret": secret}}}});
        let r = ks_call("POST", "/v3/auth/tokens", &[], Some(&auth));
        assert_eq!(r.status, 201, "Keystone refused the application credential: {}", r.body);
        r.header("x-subject-token").expect("no X-Subject-Token").to_string()
    }
}

impl Drop for Ks<'_> {
    fn drop(&mut self) {
        // Application credentials one by one first. Deleting a user (or a project, or a role assignment) makes
        // Keystone delete the user's credentials in bulk, which on SQLite (no foreign keys enforced) leaves
        // their rows in `application_credential_role` behind; the next credential then reuses the freed
        // internal id and its creation fails with 409 "Duplicate entry". Deleting one credential through the API
        // removes its role rows too.
        for (user, id) in self.app_creds.lock().map(|v| v.clone()).unwrap_or_default() {
            let path = format!("/v3/users/{user}/application_credentials/{id}");
            let _ = ks_request("DELETE", &path, &[("X-Auth-Token", &self.admin)], None);
        }
        // Then users: deleting them revokes their tokens.
        for id in self.users.lock().map(|v| v.clone()).unwrap_or_default() {
            let _ = ks_request("DELETE", &format!("/v3/users/{id}"), &[("X-Auth-Token", &self.admin)], None);
        }
        for id in self.projects.lock().map(|v| v.clone()).unwrap_or_default() {
            let _ = ks_request("DELETE", &format!("/v3/projects/{id}"), &[("X-Auth-Token", &self.admin)], None);
        }
    }
}

/// The id of the role `member` (made by `keystone-manage bootstrap`).
fn member_role(ks: &Ks) -> String {
    static ROLE: OnceLock<String> = OnceLock::new();
    ROLE.get_or_init(|| {
        let r = ks.admin_call("GET", "/v3/roles?name=member", None);
        assert_eq!(r.status, 200, "listing roles: {}", r.body);
        r.json()["roles"][0]["id"].as_str().expect("Keystone has no role `member`").to_string()
    })
    .clone()
}

/// A project id that no Keystone project has (Keystone ids are 32 hex digits).
fn unknown_project_id() -> String {
    format!("{:0>32}", secret())[..32].to_string()
}

// ---------------------------------------------------------------------------------------------------------
// Gateways with the Keystone backend
// ---------------------------------------------------------------------------------------------------------

/// A gateway with `SWARM_AUTH_BACKEND=Keystone`, the test bed's Keystone unless `env` names another URL.
fn keystone_gateway<'t>(t: &'t Test, env: &[(&str, &str)]) -> Gateway<'t> {
    let mut all = vec![
        ("SWARM_AUTH_BACKEND".to_string(), "Keystone".to_string()),
        ("SWARM_KEYSTONE_URL".to_string(), keystone_env().url.clone()),
    ];
    for (k, v) in env {
        all.retain(|(key, _)| key != k);
        all.push((k.to_string(), v.to_string()));
    }
    Gateway::start(t, GatewayOpts { tenants: vec![], env: all, ..GatewayOpts::default() })
}

fn service_account_env() -> Vec<(&'static str, &'static str)> {
    let env = keystone_env();
    vec![
        ("SWARM_KEYSTONE_SERVICE_USER", env.service_user.as_str()),
        ("SWARM_KEYSTONE_SERVICE_PASSWORD", env.service_password.as_str()),
        ("SWARM_KEYSTONE_SERVICE_PROJECT", env.service_project.as_str()),
    ]
}

fn get_containers(gw: &Gateway, token: &str, tenant: &str) -> Response {
    http(gw, &[("X-Auth-Token", token), ("X-Auth-TenantId", tenant)]).get("/v1.41/containers/json")
}

// ---------------------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------------------

it_test!(
    keystone_scoped_token_authenticates_for_its_project_only,
    mtswarm_only("authentication"),
    lock(keystone_lock),
    |t| {
        let ks = Ks::new(&t);
        let p1 = ks.project("p1");
        let p2 = ks.project("p2");
        let u1 = ks.user("u1");
        ks.grant(&u1, &p1);
        let token = ks.scoped_token(&u1, &p1);
        let gw = keystone_gateway(&t, &[]);

        let c = gw.client_with("u1", Some(&token), Some(&p1));
        c.ok(&["ps"]);
        let out = c.docker(&["run", "--rm", "--name", &t.name("hello"), image(), "echo", "hello"]);
        assert!(out.success(), "{out}");
        assert_eq!(out.stdout.trim(), "hello");

        // The token with another project's id, existing or not: one message but for the id.
        let other = gw.client_with("u1-p2", Some(&token), Some(&p2));
        assert_cli_refused(&other.docker(&["ps"]), &wrong_tenant(&p2));
        let unknown = unknown_project_id();
        let r_existing = get_containers(&gw, &token, &p2);
        let r_unknown = get_containers(&gw, &token, &unknown);
        assert_401(&r_existing, &wrong_tenant(&p2));
        assert_401(&r_unknown, &wrong_tenant(&unknown));
        assert_eq!(
            r_existing.message().replace(&p2, "ID"),
            r_unknown.message().replace(&unknown, "ID"),
            "the message tells an existing project from a missing one"
        );
        let slash = format!("{p1}/x");
        assert_401(&get_containers(&gw, &token, &slash), &bad_tenant_id(&slash));

        assert_tenant_logged(&gw, &p1);
        assert_not_logged(&gw, &[&token]);
    }
);

it_test!(keystone_garbage_tokens_are_refused, mtswarm_only("authentication"), lock(keystone_lock), |t| {
    let gw = keystone_gateway(&t, &[]);
    let project = unknown_project_id();
    // A fernet-looking token, a short word and a long random string.
    let fernet_like = format!("gAAAAABgarbage{}", "x".repeat(160));
    let random = secret();
    for (name, token) in [("fernet", fernet_like.as_str()), ("word", "garbage"), ("random", random.as_str())] {
        let c = gw.client_with(name, Some(token), Some(&project));
        assert_cli_refused(&c.docker(&["ps"]), INVALID);
    }
    assert_401(&get_containers(&gw, "garbage", &project), INVALID);
    assert_401(&http(&gw, &[]).get("/v1.41/containers/json"), NO_TOKEN);
    assert_not_logged(&gw, &[&fernet_like]);
});

it_test!(
    keystone_revoked_token_stops_working_within_the_ttl,
    mtswarm_only("authentication"),
    lock(keystone_lock),
    |t| {
        let ks = Ks::new(&t);
        let (p, u) = ks.member("p", "u");
        let token = ks.scoped_token(&u, &p);
        let gw = keystone_gateway(&t, &[("SWARM_AUTH_CACHE_TTL", "2")]);
        let c = gw.client_with("u", Some(&token), Some(&p));
        c.ok(&["ps"]);

        ks.revoke(&token);
        assert_eq!(ks.validate(&token).status, 404, "Keystone still accepts the revoked token");
        let revoked = Instant::now();
        poll("the revoked token to be refused", Duration::from_secs(10), || {
            let out = c.docker(&["ps"]);
            if out.success() {
                return None;
            }
            assert_cli_refused(&out, INVALID);
            Some(())
        });
        eprintln!("the revoked token was refused {:?} after the revocation", revoked.elapsed());
        assert_401(&get_containers(&gw, &token, &p), INVALID);
        assert_not_logged(&gw, &[&token]);
    }
);

it_test!(
    keystone_unscoped_token_is_accepted_only_for_projects_of_the_user,
    mtswarm_only("authentication"),
    lock(keystone_lock),
    |t| {
        let ks = Ks::new(&t);
        let mine = ks.project("mine");
        let theirs = ks.project("theirs");
        let u = ks.user("u");
        ks.grant(&u, &mine);
        let token = ks.unscoped_token(&u);
        let gw = keystone_gateway(&t, &[]);

        gw.client_with("mine", Some(&token), Some(&mine)).ok(&["ps"]);
        let out = gw.client_with("theirs", Some(&token), Some(&theirs)).docker(&["ps"]);
        assert_cli_refused(&out, &wrong_tenant(&theirs));
        let unknown = unknown_project_id();
        let r_existing = get_containers(&gw, &token, &theirs);
        let r_unknown = get_containers(&gw, &token, &unknown);
        assert_401(&r_unknown, &wrong_tenant(&unknown));
        assert_eq!(
            r_existing.message().replace(&theirs, "ID"),
            r_unknown.message().replace(&unknown, "ID"),
            "the message tells an existing project from a missing one"
        );
        // The refusals (cached or not) are about those projects only: the token still works for its own.
        gw.client_with("mine-again", Some(&token), Some(&mine)).ok(&["ps"]);
        assert_tenant_logged(&gw, &mine);
        assert_not_logged(&gw, &[&token]);
    }
);

it_test!(keystone_members_tenant_on_and_off, mtswarm_only("authentication"), lock(keystone_lock), |t| {
    let ks = Ks::new(&t);
    let members = ks.project("members");
    let p1 = ks.project("p1");
    let p2 = ks.project("p2");
    let member = ks.user("member");
    let outsider = ks.user("outsider");
    ks.grant(&member, &members);
    ks.grant(&member, &p1);
    ks.grant(&outsider, &p2);
    let member_token = ks.scoped_token(&member, &p1);
    let member_on_members = ks.scoped_token(&member, &members);
    let outsider_token = ks.scoped_token(&outsider, &p2);

    let gw = keystone_gateway(&t, &[("SWARM_MEMBERS_TENANT_ID", &members)]);
    gw.client_with("member", Some(&member_token), Some(&p1)).ok(&["ps"]);
    let out = gw.client_with("outsider", Some(&outsider_token), Some(&p2)).docker(&["ps"]);
    assert_cli_refused(&out, NOT_MEMBER);
    let out = gw.client_with("on-members", Some(&member_on_members), Some(&members)).docker(&["ps"]);
    assert_cli_refused(&out, MEMBERS_NOT_WORKING);
    assert_401(&get_containers(&gw, &outsider_token, &p2), NOT_MEMBER);
    assert_not_logged(&gw, &[&member_token, &member_on_members, &outsider_token]);

    // Off: anyone with a valid token for the tenant.
    let off = keystone_gateway(&t, &[]);
    off.client_with("outsider", Some(&outsider_token), Some(&p2)).ok(&["ps"]);
    off.client_with("member", Some(&member_token), Some(&p1)).ok(&["ps"]);
});

it_test!(keystone_admin_tenant_authenticates, mtswarm_only("authentication"), lock(keystone_lock), |t| {
    let ks = Ks::new(&t);
    let admin_project = ks.project("admins");
    let p = ks.project("p");
    let op = ks.user("operator");
    let u = ks.user("u");
    ks.grant(&op, &admin_project);
    ks.grant(&u, &p);
    let op_token = ks.scoped_token(&op, &admin_project);
    let u_token = ks.scoped_token(&u, &p);
    let gw = keystone_gateway(&t, &[("SWARM_ADMIN_TENANT_ID", &admin_project)]);

    gw.client_with("operator", Some(&op_token), Some(&admin_project)).ok(&["ps"]);
    gw.client_with("u", Some(&u_token), Some(&p)).ok(&["ps"]);
    // Being the admin tenant does not make a token good for another tenant, nor another token good for it.
    let r = get_containers(&gw, &op_token, &p);
    assert_401(&r, &wrong_tenant(&p));
    assert_401(&get_containers(&gw, &u_token, &admin_project), &wrong_tenant(&admin_project));
    assert_tenant_logged(&gw, &admin_project);
});

it_test!(keystone_v2_url_is_served_by_the_v3_api, mtswarm_only("authentication"), lock(keystone_lock), |t| {
    let ks = Ks::new(&t);
    let (p, u) = ks.member("p", "u");
    let token = ks.scoped_token(&u, &p);
    let base = keystone_env().url.trim_end_matches("/v3").to_string();

    for url in [format!("{base}/v2.0"), format!("{base}/v2.0/")] {
        let gw = keystone_gateway(&t, &[("SWARM_KEYSTONE_URL", &url)]);
        gw.client_with("u", Some(&token), Some(&p)).ok(&["ps"]);
        assert_cli_refused(&gw.client_with("garbage", Some("garbage"), Some(&p)).docker(&["ps"]), INVALID);
        let log = gw.stderr_text();
        assert!(
            log.lines().any(|l| l.contains("v2.0") && l.contains("v3")),
            "with SWARM_KEYSTONE_URL={url}, no log line says that v2.0 is served by v3:\n{}",
            gw.stderr()
        );
    }
    // The v3 root with a trailing slash works too, and says nothing about v2.0.
    let gw = keystone_gateway(&t, &[("SWARM_KEYSTONE_URL", &format!("{base}/v3/"))]);
    gw.client_with("u", Some(&token), Some(&p)).ok(&["ps"]);
    assert!(!gw.stderr_text().contains("v2.0"), "{}", gw.stderr());
});

it_test!(
    keystone_misconfigured_service_account_gives_503_not_401,
    mtswarm_only("authentication"),
    lock(keystone_lock),
    |t| {
        let ks = Ks::new(&t);
        let (p, u) = ks.member("p", "u");
        let token = ks.scoped_token(&u, &p);
        let env = keystone_env();

        // A wrong password: the operator's mistake, not the user's. Their valid token must not be called invalid.
        let wrong_password = format!("wrong-{}", secret());
        let gw = keystone_gateway(
            &t,
            &[
                ("SWARM_KEYSTONE_SERVICE_USER", &env.service_user),
                ("SWARM_KEYSTONE_SERVICE_PASSWORD", &wrong_password),
                ("SWARM_KEYSTONE_SERVICE_PROJECT", &env.service_project),
            ],
        );
        let out = gw.client_with("u", Some(&token), Some(&p)).docker(&["ps"]);
        assert_cli_refused(&out, UNAVAILABLE);
        assert_error(&get_containers(&gw, &token, &p), 503, UNAVAILABLE);
        assert_not_logged(&gw, &[&token, &wrong_password]);

        // An account that logs in but lacks the role `service`: Keystone answers 403 to each validation.
        let weak = ks.user("weak");
        let service_project = {
            let r = ks.admin_call("GET", &format!("/v3/projects?name={}", env.service_project), None);
            r.json()["projects"][0]["id"].as_str().expect("no service project").to_string()
        };
        ks.grant(&weak, &service_project);
        let weak_name = t.name("weak");
        let gw = keystone_gateway(
            &t,
            &[
                ("SWARM_KEYSTONE_SERVICE_USER", &weak_name),
                ("SWARM_KEYSTONE_SERVICE_PASSWORD", &weak.password),
                ("SWARM_KEYSTONE_SERVICE_PROJECT", &env.service_project),
            ],
        );
        let out = gw.client_with("u", Some(&token), Some(&p)).docker(&["ps"]);
        assert_cli_refused(&out, UNAVAILABLE);
        assert_not_logged(&gw, &[&token, &weak.password]);
    }
);

it_test!(keystone_service_account_validates_tokens, mtswarm_only("authentication"), lock(keystone_lock), |t| {
    let ks = Ks::new(&t);
    let (p, u) = ks.member("p", "u");
    let token = ks.scoped_token(&u, &p);
    let unscoped = ks.unscoped_token(&u);
    let service = service_account_env();
    let gw = keystone_gateway(&t, &service);

    gw.client_with("u", Some(&token), Some(&p)).ok(&["ps"]);
    gw.client_with("unscoped", Some(&unscoped), Some(&p)).ok(&["ps"]);
    // With a service account Keystone answers 404 for a bad subject token (self-validation gets 401).
    assert_cli_refused(&gw.client_with("garbage", Some("garbage"), Some(&p)).docker(&["ps"]), INVALID);
    let unknown = unknown_project_id();
    assert_401(&get_containers(&gw, &token, &unknown), &wrong_tenant(&unknown));
    ks.revoke(&token);
    let gw2 = keystone_gateway(&t, &service);
    assert_cli_refused(&gw2.client_with("revoked", Some(&token), Some(&p)).docker(&["ps"]), INVALID);

    let password = keystone_env().service_password.as_str();
    assert_not_logged(&gw, &[&token, &unscoped, password]);
    assert_not_logged(&gw2, &[&token, password]);

    // The project defaults to `service`.
    let defaults: Vec<(&str, &str)> =
        service.iter().copied().filter(|(k, _)| *k != "SWARM_KEYSTONE_SERVICE_PROJECT").collect();
    let gw3 = keystone_gateway(&t, &defaults);
    gw3.client_with("unscoped", Some(&unscoped), Some(&p)).ok(&["ps"]);
});

it_test!(
    keystone_expired_token_is_refused_even_when_cached,
    mtswarm_only("authentication"),
    lock(keystone_lock),
    |t| {
        let ks = Ks::new(&t);
        let (p, u) = ks.member("p", "u");
        // The self-validating gateway and the one with a service account, both with the default TTL of 300 s.
        let selfcheck = keystone_gateway(&t, &[]);
        let service = keystone_gateway(&t, &service_account_env());

        let now = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        // The token must be cached by both gateways with time to spare before it expires. On a loaded machine the
        // setup can take longer than a short lifetime: then try again with a longer one.
        let mut attempt = None;
        for lifetime in [12, 30, 60] {
            let expires_at = now() + lifetime;
            let token = ks.expiring_token(&u, &p, expires_at);
            let seen = ks.validate(&token);
            assert_eq!(seen.status, 200, "{}", seen.body);
            let keystone_says = seen.json()["token"]["expires_at"].as_str().unwrap_or_default().to_string();
            assert!(
                keystone_says.starts_with(iso8601(expires_at).trim_end_matches('Z')),
                "Keystone did not cap the token's expiry at the credential's: {keystone_says} vs {}",
                iso8601(expires_at)
            );
            let name = format!("u{lifetime}");
            let a = selfcheck.client_with(&name, Some(&token), Some(&p));
            let b = service.client_with(&name, Some(&token), Some(&p));
            let (out_a, out_b) = (a.docker(&["ps"]), b.docker(&["ps"]));
            if now() + 2 < expires_at {
                assert!(out_a.success(), "{out_a}");
                assert!(out_b.success(), "{out_b}");
                attempt = Some((token, expires_at, a, b));
                break;
            }
            eprintln!("a token with a {lifetime} s lifetime expired during the setup; trying a longer one");
        }
        let (token, expires_at, a, b) = attempt.expect("the machine is too slow to cache a 60 s token in time");
        // Cached now, with a TTL far beyond the token's expiry.
        a.ok(&["ps"]);

        // One second of grace for the clocks' rounding; then the first use must fail, no poll.
        let wait =
            Duration::from_secs(expires_at + 1).saturating_sub(SystemTime::now().duration_since(UNIX_EPOCH).unwrap());
        thread::sleep(wait);
        assert_eq!(ks.validate(&token).status, 404, "Keystone still accepts the expired token");
        assert_cli_refused(&a.docker(&["ps"]), INVALID);
        assert_cli_refused(&b.docker(&["ps"]), INVALID);
        assert_401(&get_containers(&selfcheck, &token, &p), INVALID);
        assert_401(&get_containers(&service, &token, &p), INVALID);
        assert_not_logged(&selfcheck, &[&token]);
        assert_not_logged(&service, &[&token]);
    }
);

/// Restarts Keystone when dropped, so a failing test never leaves it stopped.
struct StartKeystoneOnDrop;

impl Drop for StartKeystoneOnDrop {
    fn drop(&mut self) {
        testbed_script(&["keystone-start"]);
    }
}

it_test!(
    keystone_down_cached_tokens_keep_working_and_new_ones_get_503,
    mtswarm_only("authentication"),
    lock(keystone_lock),
    |t| {
        let ks = Ks::new(&t);
        let (p, u) = ks.member("p", "u");
        let cached = ks.scoped_token(&u, &p);
        let fresh = ks.scoped_token(&u, &p);
        let mut gw = keystone_gateway(&t, &[("SWARM_KEYSTONE_TIMEOUT", "2")]);
        let cached_client = gw.client_with("cached", Some(&cached), Some(&p));
        let fresh_client = gw.client_with("fresh", Some(&fresh), Some(&p));
        // Setup, not the behaviour under test: with a 2 s timeout a loaded machine may need a second try.
        poll("the first token to be validated and cached", Duration::from_secs(20), || {
            let out = cached_client.docker(&["ps"]);
            if !out.success() {
                eprintln!("caching the first token failed, retrying: {out}");
            }
            out.success().then_some(())
        });

        let restart = StartKeystoneOnDrop;
        testbed_script(&["keystone-stop"]);

        cached_client.ok(&["ps"]);
        let started = Instant::now();
        let out = fresh_client.docker(&["ps"]);
        let took = started.elapsed();
        assert_cli_refused(&out, UNAVAILABLE);
        assert!(took < Duration::from_secs(5), "a new token with Keystone down took {took:?} to be refused");
        let started = Instant::now();
        let r = get_containers(&gw, &fresh, &p);
        assert_error(&r, 503, UNAVAILABLE);
        assert!(r.message().starts_with(UNAVAILABLE), "{r}");
        assert!(!r.text().contains(&fresh), "the error echoes the token: {r}");
        assert!(started.elapsed() < Duration::from_secs(4), "the 503 took {:?}", started.elapsed());
        let ping = http(&gw, &[]).get("/_ping");
        assert_eq!(ping.status, 200, "{ping}");
        assert!(gw.alive(), "mtswarm exited with Keystone down:\n{}", gw.stderr());
        // Keystone being down is no proof that a token is bad: garbage gets 503 too, not 401.
        assert_error(&get_containers(&gw, "garbage", &p), 503, UNAVAILABLE);

        drop(restart);
        let back = Instant::now();
        poll("the new token to work once Keystone is back", Duration::from_secs(20), || {
            fresh_client.docker(&["ps"]).success().then_some(())
        });
        eprintln!("the new token worked {:?} after Keystone was back", back.elapsed());
        cached_client.ok(&["ps"]);
        assert!(gw.alive(), "{}", gw.stderr());
        assert_not_logged(&gw, &[&cached, &fresh]);
    }
);

/// A proxy in front of the real Keystone: it counts token validations (`GET /v3/auth/tokens`) and can hold
/// each request for a while. A real Keystone cannot be made slow on demand, nor does it count; the proxy lets
/// the real one answer.
fn keystone_proxy(delay: Duration) -> (TcpRecorder, String) {
    let proxy = TcpRecorder::start(&keystone_env().addr, delay);
    let url = format!("http://{}/v3", proxy.addr());
    (proxy, url)
}

/// How many token validations went through `proxy`.
fn validations(proxy: &TcpRecorder) -> usize {
    proxy.count("GET /v3/auth/tokens")
}

it_test!(
    keystone_concurrent_checks_of_one_token_make_one_call,
    mtswarm_only("authentication"),
    lock(keystone_lock),
    |t| {
        let ks = Ks::new(&t);
        let (p, u) = ks.member("p", "u");
        let token = ks.scoped_token(&u, &p);
        let (proxy, url) = keystone_proxy(Duration::from_millis(700));
        let gw = keystone_gateway(&t, &[("SWARM_KEYSTONE_URL", &url)]);
        let before = validations(&proxy);

        let results: Vec<u16> = thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| get_containers(&gw, &token, &p).status)).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(results.iter().all(|s| *s == 200), "not all concurrent requests passed: {results:?}\n{}", gw.stderr());
        assert_eq!(validations(&proxy) - before, 1, "8 concurrent requests with one token made several validations");
        // And later ones come from the cache.
        for _ in 0..3 {
            assert_eq!(get_containers(&gw, &token, &p).status, 200);
        }
        assert_eq!(validations(&proxy) - before, 1, "a cached token was validated again");
    }
);

it_test!(
    keystone_slow_or_unreachable_gives_503_within_the_timeout,
    mtswarm_only("authentication"),
    lock(keystone_lock),
    |t| {
        let project = unknown_project_id();

        // Slow: every request to Keystone is held 10 s, longer than SWARM_KEYSTONE_TIMEOUT.
        let (_proxy, url) = keystone_proxy(Duration::from_secs(10));
        let mut gw = keystone_gateway(&t, &[("SWARM_KEYSTONE_URL", &url), ("SWARM_KEYSTONE_TIMEOUT", "2")]);
        let started = Instant::now();
        let r = get_containers(&gw, &secret(), &project);
        let took = started.elapsed();
        assert_error(&r, 503, UNAVAILABLE);
        assert!(r.message().starts_with(UNAVAILABLE), "{r}");
        assert!(took >= Duration::from_millis(1500), "a 503 after {took:?} cannot have waited for the 2 s timeout");
        assert!(took < Duration::from_secs(6), "the timeout is 2 s but the answer took {took:?}");
        let out = gw.client_with("slow", Some(&secret()), Some(&project)).docker(&["ps"]);
        assert_cli_refused(&out, UNAVAILABLE);
        assert_eq!(http(&gw, &[]).get("/_ping").status, 200);
        assert!(gw.alive(), "{}", gw.stderr());

        // Unreachable from the start: nothing listens on the port. mtswarm starts anyway and answers 503 at once.
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let url = format!("http://127.0.0.1:{port}/v3");
        let mut gw2 = keystone_gateway(&t, &[("SWARM_KEYSTONE_URL", &url), ("SWARM_KEYSTONE_TIMEOUT", "2")]);
        let started = Instant::now();
        assert_error(&get_containers(&gw2, &secret(), &project), 503, UNAVAILABLE);
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
        assert_eq!(http(&gw2, &[]).get("/_ping").status, 200);
        assert!(gw2.alive(), "{}", gw2.stderr());
    }
);

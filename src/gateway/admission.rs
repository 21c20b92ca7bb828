//! Admission: what policy decides about a tenant's request before it reaches an engine. First on the request
//! line (API filter, image rules, `top`'s arguments, pulls and registries, plugins), then on the decoded document
//! (escapes, network rules, flavors and quota, under the tenant's quota lock). The arithmetic is pure, in
//! [`crate::policy`]; here it meets the engines (which tags exist, what a tenant uses now).

use http::Response;

use super::{escape_check, forbidden, route, system, Gateway};
use crate::api::{self, ApiError, ContainerOp, DenyKind, Endpoint};
use crate::body::Body;
use crate::policy::{self, escape, escape::Deny, quota::Usage, resources};
use crate::tenancy;
use crate::tenant::{self, Scope, TenantId};

/// A tenant's quota lock, held until the engine has answered a request that takes resources.
pub(crate) type QuotaLock = tokio::sync::OwnedMutexGuard<()>;

impl Gateway {
    /// The checks on a tenant's request line, before its body is read. An answer is the request's whole answer
    /// (a tenant's plugin list is empty).
    pub(super) async fn tenant_policy_phase(
        &self,
        endpoint: &Endpoint,
        query: Option<&str>,
    ) -> Result<Option<Response<Body>>, ApiError> {
        self.live().apifilter.check(endpoint).map_err(forbidden(DenyKind::ApiFilter))?;
        policy::images::check_endpoint(endpoint, query).map_err(forbidden(DenyKind::ApiFilter))?;
        if let Endpoint::Container { op: ContainerOp::Top, .. } = endpoint {
            let pairs = api::query::pairs(query);
            escape::check_top_args(api::query::first(&pairs, "ps_args").unwrap_or_default())
                .map_err(forbidden(DenyKind::Escape))?;
        }
        if matches!(endpoint, Endpoint::ImageCreate) {
            if let Some(pull) = policy::images::pull_of(query).map_err(forbidden(DenyKind::Escape))? {
                self.pull_phase(&pull).await?;
            }
        }
        let searched = match endpoint {
            Endpoint::ImageSearch => api::query::first(&api::query::pairs(query), "term")
                .and_then(policy::images::registry_of_reference)
                .map(|r| (r.to_string(), "term")),
            Endpoint::DistributionInspect { name } => {
                policy::images::registry_of_reference(name).map(|r| (r.to_string(), "name"))
            }
            _ => None,
        };
        if let Some((registry, field)) = searched {
            self.registry_phase(&registry, field).await?;
        }
        match policy::plugins::for_tenant(endpoint).map_err(forbidden(DenyKind::ApiFilter))? {
            policy::plugins::TenantPlugins::NoneListed => {
                Ok(Some(system::json_response(http::StatusCode::OK, &serde_json::json!([]))))
            }
            policy::plugins::TenantPlugins::Missing(name) => {
                Err(ApiError::not_found(policy::plugins::missing_message(&name)))
            }
            policy::plugins::TenantPlugins::NotPlugins => Ok(None),
        }
    }

    /// The checks on a tenant's decoded document, before tenancy resolves it: everything but ownership (tenancy
    /// may create the tenant's named volumes, and a refused request must leave nothing behind), then flavors and
    /// quota. With a quota, returns the tenant's lock.
    pub(super) async fn document_phase(
        &self,
        tenant: &TenantId,
        endpoint: &Endpoint,
        mut doc: Option<&mut serde_json::Value>,
    ) -> Result<Option<QuotaLock>, ApiError> {
        if let (Some(check), Some(doc)) = (escape_check(endpoint), doc.as_deref()) {
            check(doc, &self.escape_rules, &|_: &str| true).map_err(forbidden(DenyKind::Escape))?;
        }
        if let (Endpoint::ContainerCreate, Some(doc)) = (endpoint, doc.as_deref_mut()) {
            escape::pin_private_cgroupns(doc);
        }
        let login = doc.as_deref().filter(|_| matches!(endpoint, Endpoint::Auth));
        if let Some(address) = login.and_then(|d| d.get("serveraddress")).and_then(|a| a.as_str()) {
            if let Some(registry) = policy::images::registry_of_address(address) {
                self.registry_phase(registry, "serveraddress").await?;
            }
        }
        if let (Endpoint::NetworkCreate, Some(doc)) = (endpoint, doc.as_deref()) {
            let rules = policy::networks::NetworkRules {
                tenant_subnets: self.tenant_subnets.clone(),
                overlay: self.cluster.healthy_nodes().iter().any(|n| n.has_cluster_store()),
            };
            policy::networks::check_create(doc, &rules).map_err(forbidden(DenyKind::Escape))?;
        }
        self.resources_phase(tenant, endpoint, doc).await
    }

    /// A tenant's pull: its registry must not resolve to the engine host's own addresses, and it may not
    /// change a tag that exists on any node (the catalogue is shared).
    async fn pull_phase(&self, pull: &policy::images::Pull) -> Result<(), ApiError> {
        if let Some(registry) = &pull.registry {
            self.registry_phase(registry, "fromImage").await?;
        }
        let (path, what) = match (&pull.tag, pull.all_tags) {
            (Some(tag), _) => {
                let r = format!("{}:{tag}", pull.name);
                (format!("/images/{r}/json"), format!("the tag {r}"))
            }
            (None, true) => {
                let filters = serde_json::json!({ "reference": [&pull.name] }).to_string();
                (format!("/images/json?filters={}", tenant::encode(&filters)), format!("every tag of {}", pull.name))
            }
            // A pull by digest writes no tag.
            (None, false) => return Ok(()),
        };
        let nodes = self.cluster.healthy_nodes();
        let answers = futures_util::future::join_all(nodes.iter().map(|n| n.get_json(&path))).await;
        for answer in answers {
            match answer {
                Ok(v) if v.as_array().is_some_and(|a| a.is_empty()) => {}
                Ok(_) => return Err(forbidden(DenyKind::Isolation)(policy::images::existing_tag(&what))),
                Err(crate::cluster::EngineError::Answer { status: http::StatusCode::NOT_FOUND, .. }) => {}
                Err(e) => return Err(ApiError::from(e)),
            }
        }
        Ok(())
    }

    /// A registry a tenant's request makes the engine contact (a pull, a search, a distribution inspect, a login)
    /// may not be the engine host's own: not a loopback, link-local or unspecified address, nor a name that
    /// resolves to one.
    async fn registry_phase(&self, registry: &str, field: &str) -> Result<(), ApiError> {
        let deny = |reason: String| forbidden(DenyKind::Escape)(Deny { field: field.to_string(), reason });
        policy::images::check_registry(registry).map_err(|d| deny(d.reason))?;
        let host = policy::images::registry_host(registry);
        if host.parse::<std::net::IpAddr>().is_ok() {
            return Ok(());
        }
        let lookup = tokio::net::lookup_host((host.to_string(), 443));
        if let Ok(Ok(addrs)) = tokio::time::timeout(std::time::Duration::from_secs(5), lookup).await {
            if let Some(a) = addrs.map(|a| a.ip()).find(policy::images::forbidden_registry_address) {
                return Err(deny(format!(
                    "the registry {registry} is refused: it resolves to {a}, a loopback, link-local or unspecified \
                     address (the engine host's own)"
                )));
            }
        }
        Ok(())
    }

    /// Flavors, then quota, for a tenant's request that takes resources. With a quota, returns the tenant's
    /// lock: the caller holds it until the engine has answered.
    async fn resources_phase(
        &self,
        tenant: &TenantId,
        endpoint: &Endpoint,
        doc: Option<&mut serde_json::Value>,
    ) -> Result<Option<QuotaLock>, ApiError> {
        let Some(doc) = doc else { return Ok(None) };
        let scope = Scope::Tenant(tenant.clone());
        let live = self.live();
        let limits = live.quota.as_ref().map(|q| q.limits(tenant));
        match endpoint {
            Endpoint::ContainerCreate => {
                let mut r = resources::read_create(doc).map_err(forbidden(DenyKind::Quota))?;
                if let Some(f) = &live.flavors {
                    let named = doc
                        .pointer(&format!("/Labels/{}", policy::flavors::FLAVOR_LABEL.replace('/', "~1")))
                        .and_then(|v| v.as_str());
                    f.for_create(&r, named).map_err(forbidden(DenyKind::Flavor))?.apply(&mut r);
                }
                if let Some(l) = &limits {
                    l.require_limits(&r, "HostConfig.").map_err(forbidden(DenyKind::Quota))?;
                    r.pin_swap();
                }
                if live.flavors.is_some() || limits.is_some() {
                    resources::write_create(doc, &r).map_err(forbidden(DenyKind::Quota))?;
                }
                let Some(limits) = limits else { return Ok(None) };
                let lock = self.quota_locks.lock(tenant).await;
                let mut new_volumes = 0;
                for v in tenancy::named_volumes(doc) {
                    if self.find(&route::Probe::Volume(v), &scope).await?.is_none() {
                        new_volumes += 1;
                    }
                }
                let request = Usage {
                    memory: r.memory.max(0),
                    nano_cpus: r.nano_cpus.max(0),
                    containers: 1,
                    volumes: new_volumes,
                    networks: 0,
                };
                self.check_quota(tenant, &limits, &request).await?;
                Ok(Some(lock))
            }
            Endpoint::Container { id, op: ContainerOp::Update } => {
                let mut r = resources::read_update(doc).map_err(forbidden(DenyKind::Quota))?;
                let mut changed = false;
                if let Some(f) = &live.flavors {
                    if let Some(f) = f.for_update(&r).map_err(forbidden(DenyKind::Flavor))? {
                        f.apply(&mut r);
                        changed = true;
                    }
                }
                let Some(limits) = limits else {
                    if changed {
                        resources::write_update(doc, &r).map_err(forbidden(DenyKind::Flavor))?;
                    }
                    return Ok(None);
                };
                limits.check_update(&r).map_err(forbidden(DenyKind::Quota))?;
                r.pin_swap();
                resources::write_update(doc, &r).map_err(forbidden(DenyKind::Quota))?;
                if r.memory == 0 && r.nano_cpus == 0 {
                    return Ok(None);
                }
                let lock = self.quota_locks.lock(tenant).await;
                let node = self.locate(&route::Probe::Container(id.clone()), &scope).await?;
                let c = tenancy::Resolver { node: &node, tenant }.container(id).await?;
                let current = node
                    .get_json(&format!("/containers/{}/json", c.id))
                    .await
                    .map(|c| resources::of_inspect(&c))
                    .map_err(ApiError::from)?;
                let request = policy::quota::update_request(&r, &current);
                self.check_quota(tenant, &limits, &request).await?;
                Ok(Some(lock))
            }
            Endpoint::VolumeCreate | Endpoint::NetworkCreate => {
                let Some(limits) = limits else { return Ok(None) };
                let lock = self.quota_locks.lock(tenant).await;
                let mut request = Usage::default();
                if matches!(endpoint, Endpoint::NetworkCreate) {
                    request.networks = 1;
                } else {
                    // Creating a volume that exists answers the existing one: nothing is added.
                    let name = doc.get("Name").and_then(|n| n.as_str()).filter(|n| !n.is_empty());
                    let exists = match name {
                        Some(n) => self.find(&route::Probe::Volume(n.to_string()), &scope).await?.is_some(),
                        None => false,
                    };
                    request.volumes = i64::from(!exists);
                }
                self.check_quota(tenant, &limits, &request).await?;
                Ok(Some(lock))
            }
            _ => Ok(None),
        }
    }

    async fn check_quota(
        &self,
        tenant: &TenantId,
        limits: &policy::quota::Limits,
        request: &Usage,
    ) -> Result<(), ApiError> {
        let usage = self.usage_of(&Scope::Tenant(tenant.clone())).await?;
        let usage = usage.get(tenant.as_str()).copied().unwrap_or_default();
        limits.check(&usage, request).map_err(forbidden(DenyKind::Quota))
    }
}

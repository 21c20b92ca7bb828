//! Image commands through the gateway: images, inspect, history, tag, rmi, save/load, import, build (the
//! legacy builder), commit, image prune. Image-mutating commands run as the admin tenant.

use std::fs;
use std::time::Duration;

use crate::support::*;

const SLOW: Duration = Duration::from_secs(120);

fn tar_listing(path: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new("tar").arg("-tf").arg(path).output().unwrap();
    assert!(out.status.success(), "{} is not a tar", path.display());
    lines(&String::from_utf8_lossy(&out.stdout))
}

it_test!(images_inspect_history, |t, gw, alice| {
    let (repo, tag) = image().rsplit_once(':').unwrap_or((image(), "latest"));

    let list = alice.ok(&["images"]);
    assert!(list.starts_with("REPOSITORY"), "{list}");
    assert!(list.lines().any(|l| l.starts_with(repo) && l.contains(tag)), "{list}");
    let refs = alice.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(lines(&refs).iter().any(|l| l == image()), "{refs}");
    let filtered = alice.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}", repo]);
    assert!(lines(&filtered).iter().any(|l| l == image()), "{filtered}");

    let id = alice.ok(&["image", "inspect", "--format", "{{.Id}}", image()]);
    assert_full_id(&id);
    assert_eq!(alice.ok(&["inspect", "--type", "image", "--format", "{{.Os}}", image()]), "linux");

    let history = alice.ok(&["history", image()]);
    assert!(history.starts_with("IMAGE"), "{history}");
    assert!(history.lines().count() >= 2, "{history}");

    let err = alice.fails(&["image", "inspect", &format!("{}-none:v0", t.tag)]);
    assert!(err.contains("No such image"), "{err}");
});

it_test!(tag_and_rmi, |t, gw, admin| {
    let r = format!("{}-tagged:v1", t.tag);

    assert_eq!(admin.ok(&["tag", image(), &r]), "");
    let listed = admin.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}", &format!("{}-tagged", t.tag)]);
    assert_eq!(listed, r);
    assert_eq!(
        admin.ok(&["image", "inspect", "--format", "{{.Id}}", &r]),
        admin.ok(&["image", "inspect", "--format", "{{.Id}}", image()])
    );
    assert_eq!(admin.ok(&["rmi", &r]), format!("Untagged: {r}"));
    let err = admin.fails(&["image", "inspect", &r]);
    assert!(err.contains("No such image"), "{err}");
    // The shared image is still there.
    admin.ok(&["image", "inspect", image()]);
});

it_test!(save_and_load, |t, gw, admin| {
    let r = format!("{}-saved:v1", t.tag);
    admin.ok(&["tag", image(), &r]);

    let tar = t.path("saved.tar");
    admin.ok(&["save", "-o", tar.to_str().unwrap(), &r]);
    let listing = tar_listing(&tar);
    assert!(listing.iter().any(|l| l == "manifest.json"), "{listing:?}");

    // To stdout as well.
    let out = admin.run(&["save", &r], RunOpts { timeout: Some(SLOW), ..RunOpts::default() });
    assert!(out.success(), "{out}");
    assert_eq!(&out.stdout_bytes[257..262], b"ustar");

    admin.ok(&["rmi", &r]);
    admin.fails(&["image", "inspect", &r]);
    let out = admin
        .run(&["load"], RunOpts { stdin: Some(fs::read(&tar).unwrap()), timeout: Some(SLOW), ..RunOpts::default() });
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains(&format!("Loaded image: {r}")), "{out}");
    admin.ok(&["image", "inspect", &r]);

    // `load -i FILE` reads the file itself.
    admin.ok(&["rmi", &r]);
    let loaded = admin.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(loaded.contains(&format!("Loaded image: {r}")), "{loaded}");
    assert_eq!(admin.ok(&["run", "--rm", &r, "echo", "alive"]), "alive");
});

it_test!(import_an_exported_rootfs, |t, gw, admin| {
    let c = t.name("src");
    let r = format!("{}-imported:v1", t.tag);
    let r2 = format!("{}-imported:v2", t.tag);

    admin.ok(&["run", "--name", &c, image(), "sh", "-c", "echo imported > /marker"]);
    let tar = t.path("rootfs.tar");
    admin.ok(&["export", "-o", tar.to_str().unwrap(), &c]);

    let id = admin.ok(&["import", tar.to_str().unwrap(), &r]);
    assert_full_id(&id);
    assert_eq!(admin.ok(&["run", "--rm", &r, "cat", "/marker"]), "imported");

    // From stdin, with a change applied.
    let out = admin.run(
        &["import", "--change", "CMD [\"cat\", \"/marker\"]", "-", &r2],
        RunOpts { stdin: Some(fs::read(&tar).unwrap()), timeout: Some(SLOW), ..RunOpts::default() },
    );
    assert!(out.success(), "{out}");
    assert_eq!(admin.ok(&["run", "--rm", &r2]), "imported");
});

it_test!(build_with_the_legacy_builder, |t, gw, admin| {
    let r = format!("{}-built:v1", t.tag);

    let ctx = t.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}\nCOPY ctx.txt /ctx.txt\nRUN echo built > /built\nLABEL {}\n", image(), t.label()),
    )
    .unwrap();
    fs::write(ctx.join("ctx.txt"), "from the context\n").unwrap();
    let legacy = vec![("DOCKER_BUILDKIT".to_string(), "0".to_string())];

    let out = admin.run(
        &["build", "--force-rm", "-t", &r, ctx.to_str().unwrap()],
        RunOpts { env: legacy.clone(), timeout: Some(SLOW), ..RunOpts::default() },
    );
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("Successfully built"), "{out}");
    assert!(out.stdout.contains(&format!("Successfully tagged {r}")), "{out}");
    assert_eq!(lines(&admin.ok(&["run", "--rm", &r, "cat", "/built", "/ctx.txt"])), ["built", "from the context"]);

    // A failing step fails the build with the step's exit code.
    let bad = t.path("bad");
    fs::create_dir_all(&bad).unwrap();
    fs::write(bad.join("Dockerfile"), format!("FROM {}\nRUN exit 9\n", image())).unwrap();
    let out = admin.run(
        // --force-rm: the failed step's container goes too (it has no name of ours to clean up by).
        &["build", "--force-rm", "-t", &format!("{}-bad:v1", t.tag), bad.to_str().unwrap()],
        RunOpts { env: legacy, timeout: Some(SLOW), ..RunOpts::default() },
    );
    assert!(!out.success(), "{out}");
    assert!(format!("{}{}", out.stdout, out.stderr).contains("non-zero code: 9"), "{out}");
});

it_test!(commit_then_run_the_new_image, |t, gw, admin| {
    let c = t.name("src");
    let r = format!("{}-committed:v1", t.tag);

    admin.ok(&["run", "--name", &c, image(), "sh", "-c", "echo committed > /changed"]);
    let id = admin.ok(&["commit", "--change", "ENV COMMITTED=yes", &c, &r]);
    assert_full_id(&id);
    assert_eq!(admin.ok(&["run", "--rm", &r, "cat", "/changed"]), "committed");
    assert_eq!(admin.ok(&["run", "--rm", &r, "sh", "-c", "echo $COMMITTED"]), "yes");
});

it_test!(image_prune_removes_only_the_labelled_images, |t, gw, admin| {
    let label = t.label();
    let change = format!("LABEL {label}");
    let filter = format!("label={label}");

    // Should the label filter get lost on the way, `prune -a` could remove the shared test image: a container
    // of it, alive during the prune, keeps it in use.
    let holder = t.name("holder");
    admin.ok(&["run", "-d", "--name", &holder, image(), "sleep", "300"]);

    let src = t.name("src");
    admin.ok(&["run", "--name", &src, image(), "sh", "-c", "echo x > /x"]);
    let dangling = admin.ok(&["commit", "--change", &change, &src]);
    let r = format!("{}-prunable:v1", t.tag);
    let tagged = admin.ok(&["commit", "--change", &change, &src, &r]);
    admin.ok(&["rm", &src]);

    let deleted = |out: &str| -> Vec<String> {
        let mut ids: Vec<String> =
            lines(out).iter().filter_map(|l| l.strip_prefix("deleted: ").map(str::to_string)).collect();
        ids.sort();
        ids
    };

    // Without -a: only the dangling one.
    let out = admin.ok(&["image", "prune", "-f", "--filter", &filter]);
    let d = deleted(&out);
    assert!(d.contains(&dangling) && !d.contains(&tagged), "{out}");
    admin.ok(&["image", "inspect", &r]);

    // With -a: the tagged one as well (its layer is listed too, now that no image holds it), and nothing else.
    let out = admin.ok(&["image", "prune", "-a", "-f", "--filter", &filter]);
    assert!(deleted(&out).contains(&tagged), "{out}");
    let untagged: Vec<String> =
        lines(&out).iter().filter_map(|l| l.strip_prefix("untagged: ").map(str::to_string)).collect();
    assert_eq!(untagged, [r.as_str()], "{out}");
    admin.fails(&["image", "inspect", &r]);
    let shared = admin.ok(&["image", "inspect", "--format", "{{.Id}}", image()]);
    assert!(!deleted(&out).contains(&shared), "{out}");
});

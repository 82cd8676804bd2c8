//! The registry image lab hosts run: lab hosts cannot pull from a public registry, so it is
//! made from Debian's docker-registry package (distribution 2.8) as a `FROM scratch`-style image
//! (the binary, its libc, a default config) and saved as a tarball for `image_archive`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::{cache, docker};

pub const IMAGE: &str = "regboot-lab/registry:2.8";
const BINARY: &str = "/usr/bin/docker-registry";
const CONFIG: &str = include_str!("registry-config.yml");
const CONTENT_LABEL: &str = "io.regboot.lab.content";

/// The path of a `docker save` tarball of [`IMAGE`] in the cache, building it when missing.
pub fn ensure_archive(cache_dir: &Path) -> Result<PathBuf> {
    let binary = fs::read(BINARY).with_context(|| {
        format!(
            "cannot read {BINARY}: the lab's registry image needs `apt-get install docker-registry`"
        )
    })?;
    let id = cache::content_id(&[&binary, CONFIG.as_bytes()]);
    let archive = cache_dir.join(format!("registry-{id}.tar"));
    cache::once(
        cache_dir,
        "registry-image",
        || archive.exists(),
        || save(cache_dir, &id, &archive),
    )?;
    Ok(archive)
}

/// Build [`IMAGE`] unless the engine has this content's, and save it to `archive`.
fn save(cache_dir: &Path, id: &str, archive: &Path) -> Result<()> {
    let current = docker::run([
        "image",
        "inspect",
        "--format",
        &format!("{{{{index .Config.Labels \"{CONTENT_LABEL}\"}}}}"),
        IMAGE,
    ])
    .unwrap_or_default();
    if current != id {
        eprintln!("building the registry image {IMAGE} from {BINARY}");
        build(cache_dir, id)?;
    }
    let partial = archive.with_extension("tar.partial");
    docker::run(["save", "-o", &partial.to_string_lossy(), IMAGE])?;
    fs::rename(&partial, archive)?;
    // Older archives belong to a replaced docker-registry package.
    for entry in fs::read_dir(cache_dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("registry-") && name.ends_with(".tar") && entry.path() != archive {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}

fn build(cache_dir: &Path, id: &str) -> Result<()> {
    let ctx = cache_dir.join("registry-build");
    if ctx.exists() {
        fs::remove_dir_all(&ctx)?;
    }
    for dir in ["bin", "etc/docker/registry", "var/lib/registry", "tmp"] {
        fs::create_dir_all(ctx.join(dir))?;
    }
    fs::set_permissions(ctx.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::copy(BINARY, ctx.join("bin/registry"))?;
    fs::write(ctx.join("etc/docker/registry/config.yml"), CONFIG)?;
    for lib in shared_libraries(BINARY)? {
        let dest = ctx.join(lib.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().unwrap_or(&ctx))?;
        // fs::copy follows symlinks: the image gets the library itself.
        fs::copy(&lib, &dest).with_context(|| format!("cannot copy {lib}"))?;
    }
    // For an s3 endpoint over https.
    let bundle = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if bundle.exists() {
        fs::create_dir_all(ctx.join("etc/ssl/certs"))?;
        fs::copy(bundle, ctx.join("etc/ssl/certs/ca-certificates.crt"))?;
    }

    // A file rather than a pipe: docker import stops reading at the end-of-archive marker,
    // which would kill tar with SIGPIPE on its trailing padding.
    let tarball = cache_dir.join("registry-build.tar");
    let packed = docker::run_command({
        let mut c = Command::new("tar");
        c.args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
            .arg(&ctx)
            .arg("-cf")
            .arg(&tarball)
            .arg(".");
        c
    });
    let imported = packed.and_then(|_| {
        docker::run([
            "import",
            "-c",
            r#"ENTRYPOINT ["/bin/registry"]"#,
            "-c",
            r#"CMD ["serve", "/etc/docker/registry/config.yml"]"#,
            "-c",
            r#"VOLUME ["/var/lib/registry"]"#,
            "-c",
            "EXPOSE 5000",
            "-c",
            &format!("LABEL {CONTENT_LABEL}={id}"),
            &tarball.to_string_lossy(),
            IMAGE,
        ])
    });
    let _ = fs::remove_file(&tarball);
    fs::remove_dir_all(&ctx)?;
    imported.with_context(|| format!("building {IMAGE}"))?;
    Ok(())
}

/// The libraries `ldd` lists for `binary` (absolute paths; the vdso has none).
fn shared_libraries(binary: &str) -> Result<Vec<String>> {
    let out = docker::run_command({
        let mut c = Command::new("ldd");
        c.arg(binary);
        c
    })?;
    Ok(out
        .lines()
        .filter_map(|line| line.split_whitespace().find(|w| w.starts_with('/')))
        .map(str::to_string)
        .collect())
}

/// Put the archive at `dest` (a hard link when possible), leaving an identical file untouched.
pub fn install_archive(archive: &Path, dest: &Path) -> Result<()> {
    if let (Ok(a), Ok(b)) = (fs::metadata(archive), fs::metadata(dest))
        && a.len() == b.len()
        && fs::read(archive)? == fs::read(dest)?
    {
        return Ok(());
    }
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    let _ = fs::remove_file(dest);
    if fs::hard_link(archive, dest).is_err() {
        fs::copy(archive, dest)
            .with_context(|| format!("cannot copy {} to {}", archive.display(), dest.display()))?;
    }
    Ok(())
}

//! Embeds the vendored OCSF schema in the binary, so `ocelot` runs from any directory.
//! Generates `schema_files.rs`: a slice of (path relative to the schema root, contents).
use std::{env, fs, path::Path};

fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = fs::read_dir(dir).expect("read schema dir").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            walk(&p, root, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            out.push(format!("({rel:?}, include_str!({:?})),", p.canonicalize().unwrap()));
        }
    }
}

fn main() {
    // Read at run time: a build script compiled for another checkout (a shared target dir) must
    // still read this one.
    let base = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("ocsf");
    let mut code = String::new();
    // 1.8.0: what Ocelot writes; 1.1.0: what Amazon Security Lake's custom sources take.
    for (version, name) in [("1.8.0", "FILES"), ("1.1.0", "FILES_1_1_0")] {
        let root = base.join(version);
        println!("cargo:rerun-if-changed={}", root.display());
        let mut items = Vec::new();
        walk(&root, &root, &mut items);
        code += &format!("pub static {name}: &[(&str, &str)] = &[\n{}\n];\n", items.join("\n"));
    }
    fs::write(Path::new(&env::var("OUT_DIR").unwrap()).join("schema_files.rs"), code).unwrap();
}

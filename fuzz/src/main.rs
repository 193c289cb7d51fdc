//! `coxswain-fuzz TARGET`: one of `coxswain::fuzz::TARGETS` under AFL++ (persistent mode).

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = coxswain::fuzz::target(&name) else {
        let names: Vec<_> = coxswain::fuzz::TARGETS.iter().map(|t| t.name).collect();
        eprintln!("usage: coxswain-fuzz TARGET, one of {}", names.join(", "));
        std::process::exit(2);
    };
    let run = target.run;
    afl::fuzz!(|data: &[u8]| {
        run(data);
    });
}

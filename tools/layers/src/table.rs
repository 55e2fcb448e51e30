//! The data plane's layers as data: the one table to edit when a top-level module is added,
//! moved or removed (DESIGN.md, "Layers of the worker").
//!
//! Every top-level module of `data-plane/src` has a rank. A module may import its own top-level
//! module and any module of a lower rank; modules of the same rank may import each other only
//! where the layer allows it (the leaves, which share small types, and the lifecycle, which knows
//! every layer). The bans on top say what must never happen even if ranks were later changed.
//! A top-level module missing from the table is an error, so that a new one is placed
//! consciously; a module named here that does not exist (yet, or any more) is fine.

/// One layer of the worker.
#[derive(Debug, Clone, Copy)]
pub struct Layer {
    /// Lower ranks are further down; a module imports only ranks below its own.
    pub rank: u8,
    /// What the layer is, for messages.
    pub name: &'static str,
    /// Its top-level modules (the names of `data-plane/src/*.rs` and `data-plane/src/*/`).
    pub modules: &'static [&'static str],
    /// Whether its modules may import each other.
    pub same_rank_imports: bool,
}

/// A pair of top-level modules that must never depend one way, whatever the ranks say.
#[derive(Debug, Clone, Copy)]
pub struct Ban {
    pub importer: &'static str,
    pub never: &'static [&'static str],
}

/// A crate's whole layer table.
#[derive(Debug, Clone, Copy)]
pub struct LayerTable {
    pub layers: &'static [Layer],
    pub bans: &'static [Ban],
    /// The rank of the crate roots (`lib.rs`, `main.rs`): they declare every module and re-export
    /// from them, so they are at the top, with the lifecycle.
    pub root_rank: u8,
    /// The ranks whose code may hold process-wide statics (rule 4): only the lifecycle, which
    /// owns the process.
    pub statics_from_rank: u8,
}

/// The rank of the lifecycle: `sync`, `status`, `drain`, `run`, `cli`, `front_door` and the
/// crate roots.
pub const LIFECYCLE: u8 = 6;

/// The data plane, bottom to top.
pub const DATA_PLANE: LayerTable = LayerTable {
    layers: &[
        Layer {
            rank: 0,
            name: "leaves",
            // `http1_fields` may move into the codec crate; until then it is a leaf.
            modules: &[
                "body",
                "crypto",
                "error",
                "keys",
                "balance",
                "retry",
                "http1_fields",
            ],
            same_rank_imports: true,
        },
        Layer {
            rank: 1,
            name: "filters and observability",
            modules: &["filters", "observe"],
            same_rank_imports: false,
        },
        Layer {
            rank: 2,
            name: "routing, upstreams and TLS",
            modules: &["routing", "upstream", "tls"],
            same_rank_imports: false,
        },
        Layer {
            rank: 3,
            name: "served config",
            modules: &["served"],
            same_rank_imports: false,
        },
        Layer {
            rank: 4,
            name: "proxy",
            modules: &["proxy"],
            same_rank_imports: false,
        },
        Layer {
            rank: 5,
            name: "listener",
            modules: &["listener"],
            same_rank_imports: false,
        },
        Layer {
            rank: LIFECYCLE,
            name: "lifecycle",
            modules: &["sync", "status", "drain", "run", "cli", "front_door"],
            same_rank_imports: true,
        },
    ],
    bans: &[
        Ban {
            importer: "upstream",
            never: &["routing", "filters", "proxy", "listener", "served", "sync"],
        },
        Ban {
            importer: "routing",
            never: &["upstream", "proxy", "listener"],
        },
        Ban {
            importer: "proxy",
            never: &["listener", "sync"],
        },
    ],
    root_rank: LIFECYCLE,
    statics_from_rank: LIFECYCLE,
};

impl LayerTable {
    /// The layer of a top-level module (`None` is the crate root), or `None` when the table does
    /// not place it.
    pub fn layer_of(&self, top: Option<&str>) -> Option<Placed> {
        let Some(top) = top else {
            let layer = self.layers.iter().find(|l| l.rank == self.root_rank);
            return Some(Placed {
                rank: self.root_rank,
                name: layer.map_or("crate root", |l| l.name),
                same_rank_imports: layer.is_some_and(|l| l.same_rank_imports),
            });
        };
        self.layers
            .iter()
            .find(|layer| layer.modules.contains(&top))
            .map(|layer| Placed {
                rank: layer.rank,
                name: layer.name,
                same_rank_imports: layer.same_rank_imports,
            })
    }

    /// Whether `importer` is banned from importing `imported`.
    pub fn banned(&self, importer: &str, imported: &str) -> bool {
        self.bans
            .iter()
            .any(|ban| ban.importer == importer && ban.never.contains(&imported))
    }
}

/// Where the table puts a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub rank: u8,
    pub name: &'static str,
    pub same_rank_imports: bool,
}

//! What a simulated panel is seeded with: locations, nodes (capacity and ports), nests and eggs
//! with variables. Built-in defaults, or a YAML file of the same shape (`--seed FILE`).

use serde::{Deserialize, Serialize};

/// The seed of a simulated panel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub locations: Vec<SeedLocation>,
    pub nodes: Vec<SeedNode>,
    pub nests: Vec<SeedNest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SeedLocation {
    pub id: i64,
    pub short: String,
    #[serde(default)]
    pub long: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SeedNode {
    pub id: i64,
    pub name: String,
    pub location: i64,
    /// Loopback addresses only: the simulator never hands out a routable address.
    pub ip: String,
    /// MiB.
    pub memory: u64,
    #[serde(default)]
    pub memory_overallocate: i64,
    /// MiB.
    pub disk: u64,
    #[serde(default)]
    pub disk_overallocate: i64,
    /// Percent (Wisp checks node CPU on deploy; Pterodactyl does not).
    #[serde(default = "default_cpu")]
    pub cpu: u64,
    /// `A-B`: the node's allocations.
    pub ports: String,
    #[serde(default = "default_true")]
    pub public: bool,
    /// Pelican: the node's tags (its nodes have no location there).
    #[serde(default)]
    pub tags: Vec<String>,
}

fn default_cpu() -> u64 {
    6400
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SeedNest {
    pub id: i64,
    pub name: String,
    pub eggs: Vec<SeedEgg>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SeedEgg {
    pub id: i64,
    pub name: String,
    /// Label → image; the first is the default.
    pub docker_images: Vec<(String, String)>,
    pub startup: String,
    #[serde(default)]
    pub variables: Vec<SeedVariable>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SeedVariable {
    pub name: String,
    pub env_variable: String,
    #[serde(default)]
    pub default_value: String,
    pub rules: String,
}

fn var(name: &str, env: &str, default: &str, rules: &str) -> SeedVariable {
    SeedVariable { name: name.into(), env_variable: env.into(), default_value: default.into(), rules: rules.into() }
}

impl Default for Catalog {
    /// Two locations, three roomy nodes on loopback addresses, Minecraft (Bungeecord, Vanilla,
    /// Paper) and Rust — the ids the examples use.
    fn default() -> Self {
        let java = vec![("Java 21".to_string(), "ghcr.io/pterodactyl/yolks:java_21".to_string())];
        let node = |id: i64, location: i64, ip: &str| SeedNode {
            id,
            name: format!("node-{id}"),
            location,
            ip: ip.into(),
            memory: 262_144,
            memory_overallocate: 0,
            disk: 4_194_304,
            disk_overallocate: 0,
            cpu: 12_800,
            ports: "25565-35565".into(),
            public: true,
            // Pelican places by tags: each node carries its location's short code.
            tags: vec![if location == 1 { "fr-par" } else { "de-fra" }.into()],
        };
        Catalog {
            locations: vec![
                SeedLocation { id: 1, short: "fr-par".into(), long: Some("Paris".into()) },
                SeedLocation { id: 2, short: "de-fra".into(), long: Some("Frankfurt".into()) },
            ],
            nodes: vec![node(1, 1, "127.0.10.1"), node(2, 1, "127.0.10.2"), node(3, 2, "127.0.20.1")],
            nests: vec![
                SeedNest {
                    id: 1,
                    name: "Minecraft".into(),
                    eggs: vec![
                        SeedEgg {
                            id: 1,
                            name: "Bungeecord".into(),
                            docker_images: java.clone(),
                            startup: "java -Xms128M -Xmx{{SERVER_MEMORY}}M -jar {{SERVER_JARFILE}}".into(),
                            variables: vec![
                                var("Bungeecord Version", "BUNGEE_VERSION", "latest", "required|alpha_num|between:1,6"),
                                var(
                                    "Bungeecord Jar File",
                                    "SERVER_JARFILE",
                                    "bungeecord.jar",
                                    "required|regex:/^([\\w\\d._-]+)(\\.jar)$/",
                                ),
                            ],
                        },
                        SeedEgg {
                            id: 2,
                            name: "Vanilla Minecraft".into(),
                            docker_images: java.clone(),
                            startup: "java -Xms128M -Xmx{{SERVER_MEMORY}}M -jar {{SERVER_JARFILE}}".into(),
                            variables: vec![
                                var(
                                    "Server Jar File",
                                    "SERVER_JARFILE",
                                    "server.jar",
                                    "required|regex:/^([\\w\\d._-]+)(\\.jar)$/",
                                ),
                                var("Server Version", "VANILLA_VERSION", "latest", "required|string|between:3,15"),
                            ],
                        },
                        SeedEgg {
                            id: 3,
                            name: "Paper".into(),
                            docker_images: vec![
                                ("Java 21".into(), "ghcr.io/pterodactyl/yolks:java_21".into()),
                                ("Java 17".into(), "ghcr.io/pterodactyl/yolks:java_17".into()),
                            ],
                            startup: "java -Xms128M -XX:MaxRAMPercentage=95.0 -jar {{SERVER_JARFILE}}".into(),
                            variables: vec![
                                var("Minecraft Version", "MINECRAFT_VERSION", "latest", "nullable|string|max:20"),
                                var(
                                    "Server Jar File",
                                    "SERVER_JARFILE",
                                    "server.jar",
                                    "required|regex:/^([\\w\\d._-]+)(\\.jar)$/",
                                ),
                                var("Download Path", "DL_PATH", "", "nullable|string"),
                                var("Build Number", "BUILD_NUMBER", "latest", "required|string|max:20"),
                            ],
                        },
                    ],
                },
                SeedNest {
                    id: 2,
                    name: "Rust".into(),
                    eggs: vec![SeedEgg {
                        id: 4,
                        name: "Rust".into(),
                        docker_images: vec![("Rust".into(), "ghcr.io/pterodactyl/games:rust".into())],
                        startup:
                            "./RustDedicated -batchmode +server.port {{SERVER_PORT}} +server.hostname \"{{HOSTNAME}}\""
                                .into(),
                        variables: vec![
                            var("Server Name", "HOSTNAME", "A Rust Server", "required|string|max:60"),
                            var("World Size", "WORLD_SIZE", "3000", "required|integer"),
                            var("Max Players", "MAX_PLAYERS", "40", "required|integer|between:1,500"),
                            var("RCON Port", "RCON_PORT", "28016", "required|integer"),
                        ],
                    }],
                },
            ],
        }
    }
}

impl Catalog {
    /// Reads a seed file, checking that every node address is a loopback address.
    pub fn from_yaml(text: &str) -> anyhow::Result<Self> {
        let catalog: Catalog = serde_yaml::from_str(text)?;
        for node in &catalog.nodes {
            let ip: std::net::IpAddr =
                node.ip.parse().map_err(|e| anyhow::anyhow!("nodes[{}].ip {:?}: {e}", node.id, node.ip))?;
            anyhow::ensure!(ip.is_loopback(), "nodes[{}].ip {:?} must be a loopback address", node.id, node.ip);
            super::state::parse_range(&node.ports)
                .ok_or_else(|| anyhow::anyhow!("nodes[{}].ports {:?} must be A-B", node.id, node.ports))?;
        }
        Ok(catalog)
    }
}

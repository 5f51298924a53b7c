//! One row source per table. Each draws from its own random stream, in the same order
//! whatever the flavor, and only the encoding differs: so both flavors get identical values in
//! the columns they share.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use rand::Rng;
use rand_distr::{Distribution, Geometric, LogNormal};
use sha2::{Digest, Sha256};

use super::binary::CopyWriter;
use super::plan::{pick_weighted, rng, salt, stream, Id, Plan, SkewedPicker, DAY_MS, USAGE_SKEW};
use super::vocab::{self, pick, Lang, SeedRng, EMAIL_DOMAINS, FIRST_NAMES, KINDS, LAST_NAMES};
use super::Flavor;

/// A table's rows, produced one at a time into the COPY buffer.
pub(super) trait RowSource: Send {
    /// Appends the next row; false once the table is complete.
    fn next_row(&mut self, out: &mut CopyWriter) -> bool;
}

/// A fake argon2id PHC string: the shape the service stores, but no password hashes to it.
pub const FAKE_PASSWORD_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$YmVuY2gtc2VlZC1zYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn between(rng: &mut SeedRng, from: i64, to: i64) -> i64 {
    if to <= from {
        from
    } else {
        rng.gen_range(from..to)
    }
}

pub(super) struct Users {
    plan: Arc<Plan>,
    rng: SeedRng,
    next: u32,
}

impl Users {
    pub const COLUMNS: &'static [&'static str] = &[
        "id",
        "name",
        "email",
        "emailVerified",
        "password",
        "image",
        "plan",
        "tokenBalance",
        "contextUsed",
        "createdAt",
        "updatedAt",
    ];

    pub fn new(plan: Arc<Plan>) -> Self {
        let rng = rng(plan.seed, stream::USERS);
        Self { plan, rng, next: 0 }
    }
}

const PLANS: [(&str, f64, i32); 4] =
    [("FREE", 0.75, 10_000), ("PRO", 0.18, 500_000), ("TEAM", 0.05, 2_000_000), ("ENTERPRISE", 0.02, 10_000_000)];

impl RowSource for Users {
    fn next_row(&mut self, out: &mut CopyWriter) -> bool {
        let user = self.next;
        let Some(&created) = self.plan.users.get(user as usize) else {
            return false;
        };
        self.next += 1;
        let rng = &mut self.rng;
        let id = self.plan.user_id(user);
        let (first, last) = (pick(rng, FIRST_NAMES), pick(rng, LAST_NAMES));
        let named = rng.gen_bool(0.97);
        let email =
            format!("{}.{}{user}@{}", first, last.replace('ü', "ue"), pick(rng, EMAIL_DOMAINS)).to_ascii_lowercase();
        let verified = rng.gen_bool(0.8).then(|| created + rng.gen_range(0..DAY_MS));
        let image = rng.gen_bool(0.4);
        let (tier, _, balance_cap) = PLANS[pick_weighted(rng, &PLANS.map(|(_, weight, _)| weight))];

        out.row(Self::COLUMNS.len() as i16);
        out.text(id.as_str());
        if named {
            out.text(&format!("{first} {last}"));
        } else {
            out.null();
        }
        out.text(&email);
        out.opt_timestamp_ms(verified);
        out.text(FAKE_PASSWORD_HASH);
        if image {
            out.text(&format!("https://avatars.vibing2.dev/{}.png", id.as_str()));
        } else {
            out.null();
        }
        out.text(tier);
        out.int4(rng.gen_range(0..=balance_cap));
        out.float8(f64::from(rng.gen_range(0..10_000)) / 100.0);
        out.timestamp_ms(created);
        out.timestamp_ms(between(rng, created, self.plan.anchor));
        true
    }
}

pub(super) struct Projects {
    plan: Arc<Plan>,
    flavor: Flavor,
    rng: SeedRng,
    next: u32,
    name: String,
    description: String,
    agents: String,
}

impl Projects {
    pub fn columns(flavor: Flavor) -> &'static [&'static str] {
        match flavor {
            Flavor::Phase2 => &[
                "id",
                "name",
                "description",
                "projectType",
                "activeAgents",
                "visibility",
                "likes",
                "forks",
                "userId",
                "createdAt",
                "updatedAt",
            ],
            Flavor::Current => &[
                "id",
                "name",
                "description",
                "projectType",
                "activeAgents",
                "visibility",
                "likeCount",
                "forkCount",
                "viewCount",
                "isFeatured",
                "previewUrl",
                "userId",
                "createdAt",
                "updatedAt",
            ],
        }
    }

    pub fn new(plan: Arc<Plan>, flavor: Flavor) -> Self {
        let rng = rng(plan.seed, stream::PROJECTS);
        Self { plan, flavor, rng, next: 0, name: String::new(), description: String::new(), agents: String::new() }
    }
}

impl RowSource for Projects {
    fn next_row(&mut self, out: &mut CopyWriter) -> bool {
        let index = self.next;
        let Some(&project) = self.plan.projects.get(index as usize) else {
            return false;
        };
        self.next += 1;
        let rng = &mut self.rng;
        let kind = &KINDS[project.kind as usize];
        vocab::project_name(rng, kind, &mut self.name);
        vocab::project_description(rng, kind, &mut self.description);
        let described = rng.gen_bool(0.9);
        vocab::active_agents(rng, kind, &mut self.agents);
        let likes = project.likes as i32;
        // Forks and views follow popularity; private projects are only viewed by their team.
        let forks = (f64::from(likes) * rng.gen_range(0.0..0.3)) as i32;
        let views = likes * rng.gen_range(8..40) + rng.gen_range(0..25);
        let featured = project.public && likes >= 3 && rng.gen_bool(0.02);
        let id = self.plan.project_id(index);

        out.row(Self::columns(self.flavor).len() as i16);
        out.text(id.as_str());
        out.text(&self.name);
        out.opt_text(described.then_some(self.description.as_str()));
        out.text(kind.name);
        match self.flavor {
            Flavor::Phase2 => out.text(&self.agents),
            Flavor::Current => out.jsonb(&self.agents),
        }
        out.text(if project.public { "PUBLIC" } else { "PRIVATE" });
        out.int4(likes);
        out.int4(forks);
        if self.flavor == Flavor::Current {
            out.int4(views);
            out.boolean(featured);
            if project.public {
                out.text(&format!("https://{}.preview.vibing2.app", id.as_str()));
            } else {
                out.null();
            }
        }
        out.text(self.plan.user_id(project.owner).as_str());
        out.timestamp_ms(project.created);
        out.timestamp_ms(project.last_active);
        true
    }
}

pub(super) struct Files {
    plan: Arc<Plan>,
    flavor: Flavor,
    rng: SeedRng,
    catalog: Vec<(String, Lang)>,
    count: Geometric,
    size: LogNormal<f64>,
    project: usize,
    /// Catalog indexes still to write for the current project.
    pending: Vec<u8>,
    next_id: u64,
}

/// Files a project holds on average, beyond the first.
const EXTRA_FILES_MEAN: f64 = 4.0;

impl Files {
    pub fn columns(flavor: Flavor) -> &'static [&'static str] {
        match flavor {
            Flavor::Phase2 => &["id", "projectId", "path", "content", "language", "createdAt", "updatedAt"],
            Flavor::Current => {
                &["id", "projectId", "path", "content", "language", "createdAt", "updatedAt", "size", "checksum"]
            }
        }
    }

    pub fn expected_rows(plan: &Plan) -> u64 {
        (plan.projects.len() as f64 * (1.0 + EXTRA_FILES_MEAN)) as u64
    }

    pub fn new(plan: Arc<Plan>, flavor: Flavor) -> Self {
        let catalog = vocab::path_catalog();
        assert!(catalog.len() <= usize::from(u8::MAX));
        Self {
            rng: rng(plan.seed, stream::FILES),
            plan,
            flavor,
            catalog,
            count: Geometric::new(1.0 / (1.0 + EXTRA_FILES_MEAN)).expect("a probability"),
            // Median 2.2 KB, mean about 3 KB, a long tail of big files.
            size: LogNormal::new(2200f64.ln(), 0.8).expect("valid parameters"),
            project: 0,
            pending: Vec::new(),
            next_id: 0,
        }
    }

    /// Chooses the project's paths: the scaffold's first three, then distinct random others.
    fn plan_project(&mut self) {
        let wanted = (1 + self.count.sample(&mut self.rng) as usize).min(self.catalog.len());
        let mut order: Vec<u8> = (0..self.catalog.len() as u8).collect();
        for i in 3.min(wanted)..wanted {
            let j = self.rng.gen_range(i..order.len());
            order.swap(i, j);
        }
        order.truncate(wanted);
        order.reverse();
        self.pending = order;
    }
}

impl RowSource for Files {
    fn next_row(&mut self, out: &mut CopyWriter) -> bool {
        while self.pending.is_empty() {
            if self.project >= self.plan.projects.len() {
                return false;
            }
            self.plan_project();
            self.project += 1;
        }
        let index = self.project as u32 - 1;
        let project = self.plan.projects[index as usize];
        let entry = self.pending.pop().expect("a pending file");
        let (path, lang) = &self.catalog[usize::from(entry)];
        let rng = &mut self.rng;
        // Files are written early in a project's life and edited until its last activity.
        let early = project.created + (project.last_active - project.created) / 4;
        let created = between(rng, project.created, early);
        let updated = between(rng, created, project.last_active);
        let target = (self.size.sample(rng) as usize).clamp(120, 200_000);
        let id = Id::new(created, self.next_id, self.plan.salt(salt::FILE));
        self.next_id += 1;

        out.row(Self::columns(self.flavor).len() as i16);
        out.text(id.as_str());
        out.text(self.plan.project_id(index).as_str());
        out.text(path);
        let content = out.text_with(|buf| vocab::file_content(rng, *lang, target, buf));
        let (size, checksum) = if self.flavor == Flavor::Current {
            let bytes = &out.bytes()[content];
            let mut hex = [0u8; 64];
            hex::encode_to_slice(Sha256::digest(bytes), &mut hex).expect("64 hex digits");
            (bytes.len() as i32, Some(hex))
        } else {
            (0, None)
        };
        out.text(lang.name());
        out.timestamp_ms(created);
        out.timestamp_ms(updated);
        if let Some(hex) = checksum {
            out.int4(size);
            out.text(std::str::from_utf8(&hex).expect("hex is ASCII"));
        }
        true
    }
}

/// The next message of one project's chat. Ordered by time, then project.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct NextMessage {
    at: i64,
    project: u32,
    written: u32,
    /// Whether the chat opened with a system message; user and assistant alternate after it.
    system: bool,
}

/// Messages in global time order, merged from every project's chat, as a live system
/// appends them: a project's messages are spread through the table, ids and cursors rise
/// with `createdAt`, and the cursors are exactly those the Phase-2 upgrade would assign.
pub(super) struct Messages {
    plan: Arc<Plan>,
    flavor: Flavor,
    rng: SeedRng,
    catalog: Vec<(String, Lang)>,
    reply_size: LogNormal<f64>,
    /// One entry per chat with messages left: O(projects), not O(messages).
    queue: BinaryHeap<Reverse<NextMessage>>,
    cursor: i64,
}

impl Messages {
    pub fn columns(flavor: Flavor) -> &'static [&'static str] {
        match flavor {
            Flavor::Phase2 => &["id", "role", "content", "projectId", "createdAt"],
            Flavor::Current => &["id", "role", "content", "projectId", "createdAt", "cursor", "tokens"],
        }
    }

    pub fn new(plan: Arc<Plan>, flavor: Flavor) -> Self {
        let mut rng = rng(plan.seed, stream::MESSAGES);
        let queue = (0..plan.projects.len() as u32)
            .filter(|&p| plan.projects[p as usize].messages > 0)
            .map(|project| {
                let system = rng.gen_bool(0.1);
                let at = message_time(&plan, project, 0, &mut rng);
                Reverse(NextMessage { at, project, written: 0, system })
            })
            .collect();
        Self {
            rng,
            plan,
            flavor,
            catalog: vocab::path_catalog(),
            reply_size: LogNormal::new(300f64.ln(), 0.8).expect("valid parameters"),
            queue,
            cursor: 0,
        }
    }
}

/// When message `k` of the project's chat is written: spread evenly over its active life.
fn message_time(plan: &Plan, project: u32, k: u32, rng: &mut SeedRng) -> i64 {
    let project = &plan.projects[project as usize];
    let span = (project.last_active - project.created) as f64;
    let at = (f64::from(k) + rng.gen::<f64>()) / f64::from(project.messages);
    project.created + (span * at) as i64
}

impl RowSource for Messages {
    fn next_row(&mut self, out: &mut CopyWriter) -> bool {
        let Some(Reverse(message)) = self.queue.pop() else {
            return false;
        };
        let rng = &mut self.rng;
        let role = match message.written.checked_sub(u32::from(message.system)) {
            None => "system",
            Some(turn) if turn % 2 == 0 => "user",
            Some(_) => "assistant",
        };
        self.cursor += 1;
        let id = Id::new(message.at, self.cursor as u64, self.plan.salt(salt::MESSAGE));

        out.row(Self::columns(self.flavor).len() as i16);
        out.text(id.as_str());
        out.text(role);
        let reply_target = (self.reply_size.sample(rng) as usize).clamp(40, 16_000);
        let content = out.text_with(|buf| match role {
            "system" => vocab::system_prompt(rng, buf),
            "user" => vocab::user_prompt(rng, buf),
            _ => vocab::assistant_reply(rng, &self.catalog, reply_target, buf),
        });
        let tokens = content.len().div_ceil(4) as i32;
        out.text(self.plan.project_id(message.project).as_str());
        out.timestamp_ms(message.at);
        if self.flavor == Flavor::Current {
            out.int8(self.cursor);
            out.int4(tokens);
        }

        let written = message.written + 1;
        if written < self.plan.projects[message.project as usize].messages {
            // Strictly after the previous one, so time and cursor agree within the chat.
            let at = message_time(&self.plan, message.project, written, rng).max(message.at + 1);
            self.queue.push(Reverse(NextMessage { at, written, ..message }));
        }
        true
    }
}

const ENDPOINTS: [(&str, f64); 5] = [
    ("/api/agents/stream", 0.45),
    ("/api/chat", 0.25),
    ("/api/generate", 0.15),
    ("/api/code/review", 0.10),
    ("/api/image/describe", 0.05),
];

/// Models, their shares and their blended price in micro-dollars per 1,000 tokens.
pub const MODELS: [(&str, f64, i64); 4] = [
    ("claude-sonnet-4-5", 0.55, 6_000),
    ("claude-haiku-4-5", 0.30, 1_600),
    ("claude-opus-4-1", 0.10, 30_000),
    ("gpt-4o-mini", 0.05, 400),
];

/// Days of usage history before the anchor.
pub const USAGE_DAYS: i64 = 180;

pub(super) struct Usage {
    plan: Arc<Plan>,
    flavor: Flavor,
    rng: SeedRng,
    users: SkewedPicker,
    tokens: LogNormal<f64>,
    next: u64,
}

impl Usage {
    pub fn columns(flavor: Flavor) -> &'static [&'static str] {
        match flavor {
            Flavor::Phase2 => &["id", "tokensUsed", "contextUsed", "savedTokens", "userId", "endpoint", "timestamp"],
            Flavor::Current => &[
                "id",
                "tokensUsed",
                "contextUsed",
                "savedTokens",
                "userId",
                "endpoint",
                "timestamp",
                "projectId",
                "model",
                "cost",
            ],
        }
    }

    pub fn new(plan: Arc<Plan>, flavor: Flavor) -> Self {
        Self {
            rng: rng(plan.seed, stream::USAGE),
            users: SkewedPicker::new(plan.users_by_rank.clone(), USAGE_SKEW),
            tokens: LogNormal::new(1200f64.ln(), 1.0).expect("valid parameters"),
            plan,
            flavor,
            next: 0,
        }
    }
}

impl RowSource for Usage {
    fn next_row(&mut self, out: &mut CopyWriter) -> bool {
        let total = self.plan.usage_rows;
        if self.next >= total {
            return false;
        }
        let index = self.next;
        self.next += 1;
        let plan = &self.plan;
        let rng = &mut self.rng;
        // Rows arrive in time order, like the append-only log they model.
        let from = plan.anchor - USAGE_DAYS * DAY_MS;
        let at = (index as f64 + rng.gen::<f64>()) / total as f64;
        let timestamp = from + (at * (USAGE_DAYS * DAY_MS) as f64) as i64;
        let user = (0..16).map(|_| self.users.pick(rng)).find(|&u| plan.users[u as usize] <= timestamp).unwrap_or(0);
        // Most calls are made inside one of the caller's projects that existed by then.
        let owned = plan.owned_by(user);
        let existing = owned.partition_point(|&p| plan.projects[p as usize].created <= timestamp);
        let project = (existing > 0 && rng.gen_bool(0.85)).then(|| owned[rng.gen_range(0..existing)]);
        let endpoint = ENDPOINTS[pick_weighted(rng, &ENDPOINTS.map(|e| e.1))].0;
        let (model, _, price) = MODELS[pick_weighted(rng, &MODELS.map(|m| m.1))];
        let tokens = (self.tokens.sample(rng) as i32).clamp(10, 200_000);
        let saved = if rng.gen_bool(0.3) { (f64::from(tokens) * rng.gen_range(0.0..0.5)) as i32 } else { 0 };
        let context = (f64::from(tokens) / 2_000.0 + rng.gen_range(0.0..5.0)).min(100.0);
        let id = Id::new(timestamp, index, plan.salt(salt::USAGE));

        out.row(Self::columns(self.flavor).len() as i16);
        out.text(id.as_str());
        out.int4(tokens);
        out.float8((context * 100.0).round() / 100.0);
        out.int4(saved);
        out.text(plan.user_id(user).as_str());
        out.text(endpoint);
        out.timestamp_ms(timestamp);
        if self.flavor == Flavor::Current {
            match project {
                Some(project) => out.text(plan.project_id(project).as_str()),
                None => out.null(),
            }
            out.text(model);
            out.numeric(i64::from(tokens) * price / 1000, 6);
        }
        true
    }
}

/// Draws distinct users other than a project's owner, in O(k) time per project after an
/// O(users) allocation made once.
struct DistinctUsers {
    taken: Vec<bool>,
    picked: Vec<u32>,
}

impl DistinctUsers {
    fn new(users: usize) -> Self {
        Self { taken: vec![false; users], picked: Vec::new() }
    }

    /// `count` must be below the number of users.
    fn draw(&mut self, rng: &mut SeedRng, count: usize, owner: u32) -> &[u32] {
        for &user in &self.picked {
            self.taken[user as usize] = false;
        }
        self.picked.clear();
        self.taken[owner as usize] = true;
        while self.picked.len() < count {
            let user = rng.gen_range(0..self.taken.len() as u32);
            if !std::mem::replace(&mut self.taken[user as usize], true) {
                self.picked.push(user);
            }
        }
        self.taken[owner as usize] = false;
        &self.picked
    }
}

/// Share of projects with collaborators, and their mean number beyond the first.
const SHARED_PROJECTS: f64 = 0.1;
const EXTRA_COLLABORATORS_MEAN: f64 = 1.0;

const ROLES: [(&str, f64); 3] = [("VIEWER", 0.5), ("EDITOR", 0.4), ("ADMIN", 0.1)];

pub(super) struct Collaborators {
    plan: Arc<Plan>,
    rng: SeedRng,
    count: Geometric,
    users: DistinctUsers,
    project: usize,
    /// (user, role) still to write for the current project.
    pending: Vec<(u32, &'static str)>,
    next_id: u64,
}

impl Collaborators {
    pub const COLUMNS: &'static [&'static str] = &["id", "projectId", "userId", "role", "createdAt"];

    pub fn expected_rows(plan: &Plan) -> u64 {
        (plan.projects.len() as f64 * SHARED_PROJECTS * (1.0 + EXTRA_COLLABORATORS_MEAN)) as u64
    }

    pub fn new(plan: Arc<Plan>) -> Self {
        Self {
            rng: rng(plan.seed, stream::COLLABORATORS),
            count: Geometric::new(1.0 / (1.0 + EXTRA_COLLABORATORS_MEAN)).expect("a probability"),
            users: DistinctUsers::new(plan.users.len()),
            plan,
            project: 0,
            pending: Vec::new(),
            next_id: 0,
        }
    }
}

impl RowSource for Collaborators {
    fn next_row(&mut self, out: &mut CopyWriter) -> bool {
        while self.pending.is_empty() {
            let Some(project) = self.plan.projects.get(self.project) else {
                return false;
            };
            self.project += 1;
            if self.rng.gen_bool(SHARED_PROJECTS) {
                let wanted = (1 + self.count.sample(&mut self.rng) as usize).min(self.plan.users.len() - 1);
                let users = self.users.draw(&mut self.rng, wanted, project.owner);
                let roles = ROLES.map(|r| r.1);
                self.pending = users.iter().map(|&u| (u, ROLES[pick_weighted(&mut self.rng, &roles)].0)).collect();
            }
        }
        let index = self.project as u32 - 1;
        let project = self.plan.projects[index as usize];
        let (user, role) = self.pending.pop().expect("a pending collaborator");
        let created = between(&mut self.rng, project.created, self.plan.anchor);
        let id = Id::new(created, self.next_id, self.plan.salt(salt::COLLABORATOR));
        self.next_id += 1;

        out.row(Self::COLUMNS.len() as i16);
        out.text(id.as_str());
        out.text(self.plan.project_id(index).as_str());
        out.text(self.plan.user_id(user).as_str());
        out.text(role);
        out.timestamp_ms(created);
        true
    }
}

/// `ProjectLike` (current schema only): exactly `likeCount` rows per project.
pub(super) struct Likes {
    plan: Arc<Plan>,
    rng: SeedRng,
    users: DistinctUsers,
    project: usize,
    pending: Vec<u32>,
}

impl Likes {
    pub const COLUMNS: &'static [&'static str] = &["projectId", "userId", "createdAt"];

    pub fn new(plan: Arc<Plan>) -> Self {
        Self {
            rng: rng(plan.seed, stream::LIKES),
            users: DistinctUsers::new(plan.users.len()),
            plan,
            project: 0,
            pending: Vec::new(),
        }
    }
}

impl RowSource for Likes {
    fn next_row(&mut self, out: &mut CopyWriter) -> bool {
        while self.pending.is_empty() {
            let Some(project) = self.plan.projects.get(self.project) else {
                return false;
            };
            self.project += 1;
            if project.likes > 0 {
                let users = self.users.draw(&mut self.rng, project.likes as usize, project.owner);
                self.pending = users.to_vec();
            }
        }
        let index = self.project as u32 - 1;
        let project = self.plan.projects[index as usize];
        let user = self.pending.pop().expect("a pending like");

        out.row(Self::COLUMNS.len() as i16);
        out.text(self.plan.project_id(index).as_str());
        out.text(self.plan.user_id(user).as_str());
        out.timestamp_ms(between(&mut self.rng, project.created, self.plan.anchor));
        true
    }
}

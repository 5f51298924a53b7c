//! The skeleton of a data set: who exists, when, and how busy each user and project is.
//!
//! Everything here is O(users + projects), a few dozen bytes each; the big tables (messages,
//! files, usage) are generated row by row from it and never held in memory.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Zipf};

pub(super) const HOUR_MS: i64 = 3_600_000;
pub(super) const DAY_MS: i64 = 24 * HOUR_MS;

/// Scale-1 sizes of the tables the plan fixes outright. Files (about 5 a project) and
/// collaborators (about 0.2 a project) follow from per-project draws.
const USERS: f64 = 10_000.0;
const PROJECTS: f64 = 100_000.0;
const MESSAGES: f64 = 2_000_000.0;
const USAGE_ROWS: f64 = 2_000_000.0;
const LIKES: f64 = 300_000.0;
const PUBLIC_SHARE: f64 = 0.3;

/// Zipf exponents. Projects per owner: the busiest user owns ~1% of all projects. Messages
/// per project: the top few projects hold 10k+ messages at scale 1 while the median holds
/// about 8. Usage per user: one heavy user has ~6% of all calls. Likes per public project:
/// mean about 3 over all projects, with heavy ties at the low end.
const OWNER_SKEW: f64 = 0.6;
const MESSAGE_SKEW: f64 = 0.8;
pub(super) const USAGE_SKEW: f64 = 0.9;
const LIKE_SKEW: f64 = 0.8;

/// Independent random streams, one per purpose, so that changing how one table is generated
/// leaves every other table's rows as they were.
pub(super) mod stream {
    pub const PLAN_USERS: u64 = 1;
    pub const PLAN_PROJECTS: u64 = 2;
    pub const PLAN_MESSAGES: u64 = 3;
    pub const PLAN_LIKES: u64 = 4;
    pub const USERS: u64 = 10;
    pub const PROJECTS: u64 = 11;
    pub const FILES: u64 = 12;
    pub const MESSAGES: u64 = 13;
    pub const USAGE: u64 = 14;
    pub const COLLABORATORS: u64 = 15;
    pub const LIKES: u64 = 16;
}

pub(super) fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// What later tables need to know about one project.
#[derive(Debug, Clone, Copy)]
pub(super) struct ProjectPlan {
    pub created: i64,
    /// Last activity: the project's `updatedAt`; its messages and files fall before it.
    pub last_active: i64,
    pub owner: u32,
    pub messages: u32,
    pub likes: u32,
    pub kind: u8,
    pub public: bool,
}

pub(super) struct Plan {
    pub seed: u64,
    /// "Now", in Unix milliseconds: every timestamp lies before it.
    pub anchor: i64,
    pub usage_rows: u64,
    /// Each user's `createdAt`, ascending (users sign up in id order).
    pub users: Vec<i64>,
    /// Users by activity rank, busiest first: the same people own many projects and spend
    /// many tokens.
    pub users_by_rank: Vec<u32>,
    /// In `createdAt` order.
    pub projects: Vec<ProjectPlan>,
    /// Projects grouped by owner, each group in `createdAt` order.
    owned_start: Vec<u32>,
    owned: Vec<u32>,
}

/// A 25-character, cuid-shaped id: `c`, the row's creation time and its index in base 36, then
/// a tail hashed from the seed. Unique by construction, roughly time-ordered like Prisma's
/// `cuid()`, and the same for a given seed whatever the flavor.
#[derive(Clone, Copy)]
pub(super) struct Id([u8; 25]);

impl Id {
    pub fn new(created_ms: i64, index: u64, salt: u64) -> Self {
        let mut id = [b'c'; 25];
        base36(&mut id[1..9], created_ms.max(0) as u64);
        base36(&mut id[9..15], index);
        base36(&mut id[15..25], mix64(salt ^ index));
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ids are ASCII")
    }
}

/// Fills `out` with the low base-36 digits of `value`, most significant first.
fn base36(out: &mut [u8], mut value: u64) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(value % 36) as usize];
        value /= 36;
    }
}

/// SplitMix64's finaliser: a fixed, platform-independent 64-bit hash.
pub(super) fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Per-table salts for [`Id::new`], so that equal (time, index) pairs in two tables differ.
pub(super) mod salt {
    pub const USER: u64 = 0x5553_4552;
    pub const PROJECT: u64 = 0x5052_4f4a;
    pub const FILE: u64 = 0x4649_4c45;
    pub const MESSAGE: u64 = 0x4d45_5353;
    pub const USAGE: u64 = 0x5553_4147;
    pub const COLLABORATOR: u64 = 0x434f_4c4c;
}

fn scaled(count: f64, scale: f64, minimum: u64) -> u64 {
    ((count * scale).round() as u64).max(minimum)
}

/// Draws ranks 1..=n from Zipf(`skew`) and maps them through a shuffled order, so the busiest
/// item is a random one rather than the first.
pub(super) struct SkewedPicker {
    zipf: Zipf<f64>,
    order: Vec<u32>,
}

impl SkewedPicker {
    pub fn new(order: Vec<u32>, skew: f64) -> Self {
        let zipf = Zipf::new(order.len() as u64, skew).expect("a non-empty order");
        Self { zipf, order }
    }

    pub fn pick(&self, rng: &mut impl Rng) -> u32 {
        let rank = self.zipf.sample(rng) as usize;
        self.order[rank.clamp(1, self.order.len()) - 1]
    }
}

/// Project types and their shares.
pub(super) const KIND_WEIGHTS: [f64; 6] = [0.30, 0.20, 0.15, 0.15, 0.12, 0.08];

pub(super) fn pick_weighted(rng: &mut impl Rng, weights: &[f64]) -> usize {
    let mut x = rng.gen::<f64>() * weights.iter().sum::<f64>();
    for (i, weight) in weights.iter().enumerate() {
        if x < *weight {
            return i;
        }
        x -= weight;
    }
    weights.len() - 1
}

impl Plan {
    pub fn build(scale: f64, seed: u64, anchor: i64) -> Self {
        let user_count = scaled(USERS, scale, 2) as usize;
        let project_count = scaled(PROJECTS, scale, 1) as usize;

        // Users sign up over the two years before the last 30 days, in id order.
        let mut rng = rng(seed, stream::PLAN_USERS);
        let users_from = anchor - 730 * DAY_MS;
        let users_span = (700 * DAY_MS) as f64;
        let users: Vec<i64> = (0..user_count)
            .map(|i| {
                let at = (i as f64 + rng.gen::<f64>()) / user_count as f64;
                users_from + (at * users_span) as i64
            })
            .collect();
        let mut users_by_rank: Vec<u32> = (0..user_count as u32).collect();
        users_by_rank.shuffle(&mut rng);

        // Projects are created over the last year, in id order, each by a user who existed.
        let mut rng = self::rng(seed, stream::PLAN_PROJECTS);
        let owners = SkewedPicker::new(users_by_rank.clone(), OWNER_SKEW);
        let projects_from = anchor - 365 * DAY_MS;
        let projects_span = (365 * DAY_MS - HOUR_MS) as f64;
        let mut projects: Vec<ProjectPlan> = (0..project_count)
            .map(|i| {
                let at = (i as f64 + rng.gen::<f64>()) / project_count as f64;
                let created = projects_from + (at * projects_span) as i64;
                let owner = (0..16).map(|_| owners.pick(&mut rng)).find(|&u| users[u as usize] <= created).unwrap_or(0);
                let kind = pick_weighted(&mut rng, &KIND_WEIGHTS) as u8;
                let public = rng.gen_bool(PUBLIC_SHARE);
                let active_share = rng.gen_range(0.02..1.0);
                ProjectPlan {
                    created,
                    last_active: created + ((anchor - created) as f64 * active_share) as i64,
                    owner,
                    messages: 0,
                    likes: 0,
                    kind,
                    public,
                }
            })
            .collect();

        // Messages per project: a multinomial draw over Zipf ranks.
        let mut rng = self::rng(seed, stream::PLAN_MESSAGES);
        let mut order: Vec<u32> = (0..project_count as u32).collect();
        order.shuffle(&mut rng);
        let busy = SkewedPicker::new(order, MESSAGE_SKEW);
        for _ in 0..scaled(MESSAGES, scale, 0) {
            projects[busy.pick(&mut rng) as usize].messages += 1;
        }
        // A busy project is active long enough for its chat (30 s a message on average).
        for project in &mut projects {
            let needed = project.created + i64::from(project.messages) * 30_000;
            project.last_active = project.last_active.max(needed).min(anchor - 1000);
        }

        // Likes go to public projects, at most one per user other than the owner.
        let mut rng = self::rng(seed, stream::PLAN_LIKES);
        let mut public: Vec<u32> = (0..project_count as u32).filter(|&p| projects[p as usize].public).collect();
        if !public.is_empty() {
            public.shuffle(&mut rng);
            let popular = SkewedPicker::new(public, LIKE_SKEW);
            let most_likes = user_count as u32 - 1;
            for _ in 0..scaled(LIKES, scale, 0) {
                let project = &mut projects[popular.pick(&mut rng) as usize];
                if project.likes < most_likes {
                    project.likes += 1;
                }
            }
        }

        let mut owned_start = vec![0u32; user_count + 1];
        for project in &projects {
            owned_start[project.owner as usize + 1] += 1;
        }
        for u in 0..user_count {
            owned_start[u + 1] += owned_start[u];
        }
        let mut next = owned_start.clone();
        let mut owned = vec![0u32; project_count];
        for (p, project) in projects.iter().enumerate() {
            let slot = &mut next[project.owner as usize];
            owned[*slot as usize] = p as u32;
            *slot += 1;
        }

        Self {
            seed,
            anchor,
            usage_rows: scaled(USAGE_ROWS, scale, 0),
            users,
            users_by_rank,
            projects,
            owned_start,
            owned,
        }
    }

    pub fn user_id(&self, user: u32) -> Id {
        Id::new(self.users[user as usize], u64::from(user), self.salt(salt::USER))
    }

    pub fn project_id(&self, project: u32) -> Id {
        Id::new(self.projects[project as usize].created, u64::from(project), self.salt(salt::PROJECT))
    }

    /// The table's id salt under this seed.
    pub fn salt(&self, table: u64) -> u64 {
        mix64(self.seed ^ mix64(table))
    }

    /// The user's projects, oldest first.
    pub fn owned_by(&self, user: u32) -> &[u32] {
        let (from, to) = (self.owned_start[user as usize], self.owned_start[user as usize + 1]);
        &self.owned[from as usize..to as usize]
    }

    pub fn message_rows(&self) -> u64 {
        self.projects.iter().map(|p| u64::from(p.messages)).sum()
    }

    pub fn like_rows(&self) -> u64 {
        self.projects.iter().map(|p| u64::from(p.likes)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_cuid_shaped_and_distinct() {
        let a = Id::new(1_700_000_000_000, 0, 1);
        let b = Id::new(1_700_000_000_000, 1, 1);
        assert_eq!(a.as_str().len(), 25);
        assert!(a.as_str().starts_with('c'));
        assert!(a.as_str().bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_ne!(a.as_str(), b.as_str());
    }

    #[test]
    fn the_plan_is_consistent() {
        let anchor = 1_767_225_600_000;
        let plan = Plan::build(0.01, 3, anchor);
        assert_eq!(plan.users.len(), 100);
        assert_eq!(plan.projects.len(), 1000);
        assert_eq!(plan.message_rows(), 20_000);
        assert!(plan.users.windows(2).all(|w| w[0] <= w[1]));
        assert!(plan.projects.windows(2).all(|w| w[0].created <= w[1].created));
        for (p, project) in plan.projects.iter().enumerate() {
            assert!(plan.users[project.owner as usize] <= project.created);
            assert!(project.created <= project.last_active && project.last_active < anchor);
            assert!(plan.owned_by(project.owner).contains(&(p as u32)));
            assert!(project.public || project.likes == 0);
        }
    }
}

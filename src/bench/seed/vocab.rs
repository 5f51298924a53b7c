//! Word lists and the text generators built on them: names, descriptions, file contents and
//! chat messages that look enough like the real thing for trigram search, TOAST and the
//! planner's statistics to behave as they would in production.

use std::io::Write;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub(super) type SeedRng = ChaCha8Rng;

pub(super) fn pick<'a>(rng: &mut SeedRng, list: &[&'a str]) -> &'a str {
    list[rng.gen_range(0..list.len())]
}

/// A project type: its `projectType` value, the words its names end with, the noun its
/// description uses and the agents that work on it (the lead first).
pub(super) struct Kind {
    pub name: &'static str,
    titles: &'static [&'static str],
    noun: &'static str,
    agents: &'static [&'static str],
}

/// In the order of `plan::KIND_WEIGHTS`.
pub(super) const KINDS: [Kind; 6] = [
    Kind {
        name: "website",
        titles: &["Website", "Site", "Portfolio", "Blog", "Hub"],
        noun: "website",
        agents: &["frontend-developer", "ui-ux-designer", "code-reviewer", "seo-specialist"],
    },
    Kind {
        name: "game",
        titles: &["Game", "Arcade", "Quest", "Puzzle", "Runner"],
        noun: "browser game",
        agents: &["game-developer", "frontend-developer", "code-reviewer", "sound-designer"],
    },
    Kind {
        name: "dashboard",
        titles: &["Dashboard", "Analytics", "Tracker", "Monitor", "Insights"],
        noun: "dashboard",
        agents: &["data-engineer", "frontend-developer", "backend-developer", "code-reviewer"],
    },
    Kind {
        name: "landing",
        titles: &["Landing Page", "Launch Page", "Waitlist", "Promo"],
        noun: "landing page",
        agents: &["copywriter", "ui-ux-designer", "frontend-developer"],
    },
    Kind {
        name: "tool",
        titles: &["Tool", "Generator", "Converter", "Calculator", "Helper"],
        noun: "web tool",
        agents: &["backend-developer", "frontend-developer", "test-engineer", "code-reviewer"],
    },
    Kind {
        name: "ecommerce",
        titles: &["Shop", "Store", "Marketplace", "Boutique"],
        noun: "online store",
        agents: &["backend-developer", "payments-specialist", "frontend-developer", "ui-ux-designer"],
    },
];

pub(super) const FIRST_NAMES: &[&str] = &[
    "Ada", "Ben", "Chloe", "Diego", "Elena", "Farah", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena", "Mateo", "Nora",
    "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wen", "Xavi", "Yara", "Zoe", "Liam", "Mia",
    "Noah", "Emma", "Arjun", "Sofia", "Kenji", "Amara", "Lucas", "Ines", "Theo", "Maya", "Felix", "Aiko",
];

pub(super) const LAST_NAMES: &[&str] = &[
    "Garcia", "Smith", "Nguyen", "Kim", "Okafor", "Silva", "Müller", "Rossi", "Patel", "Cohen", "Novak", "Tanaka",
    "Larsen", "Dubois", "Kowalski", "Haddad", "Moreau", "Ivanova", "Santos", "Chen", "Brown", "Jensen", "Fischer",
    "Ali", "Costa", "Yilmaz", "Sato", "Walker", "Lopez", "Singh",
];

pub(super) const EMAIL_DOMAINS: &[&str] =
    &["gmail.com", "outlook.com", "proton.me", "icloud.com", "fastmail.com", "example.dev", "startup.io", "school.edu"];

const ADJECTIVES: &[&str] = &[
    "Neon", "Retro", "Tiny", "Cosmic", "Pixel", "Swift", "Cozy", "Bright", "Minimal", "Lucky", "Smart", "Zen", "Bold",
    "Quiet", "Golden", "Rapid", "Clever", "Urban", "Wild", "Solar",
];

const SUBJECTS: &[&str] = &[
    "Recipe",
    "Fitness",
    "Crypto",
    "Weather",
    "Travel",
    "Budget",
    "Music",
    "Photo",
    "Coffee",
    "Pet",
    "Garden",
    "Study",
    "Habit",
    "Movie",
    "Book",
    "Job",
    "Event",
    "Chess",
    "Space",
    "Ocean",
    "Sales",
    "Inventory",
    "Team",
    "Sleep",
    "Language",
    "Podcast",
    "Bike",
    "Plant",
];

const AUDIENCES: &[&str] = &[
    "small teams",
    "students",
    "indie hackers",
    "gamers",
    "freelancers",
    "coffee shops",
    "runners",
    "book clubs",
    "remote teams",
    "families",
    "musicians",
    "teachers",
];

const FEATURES: &[&str] = &[
    "a dark mode toggle",
    "real-time updates",
    "drag-and-drop sorting",
    "a leaderboard",
    "offline support",
    "CSV export",
    "an admin dashboard",
    "user accounts",
    "interactive charts",
    "keyboard shortcuts",
    "a responsive layout",
    "push notifications",
    "a search bar",
    "multiplayer rooms",
    "Stripe checkout",
    "a newsletter signup",
    "animated transitions",
    "i18n support",
    "shareable links",
    "a REST API",
];

/// `{Adjective} {Subject} {Title}`, e.g. "Neon Recipe Dashboard".
pub(super) fn project_name(rng: &mut SeedRng, kind: &Kind, out: &mut String) {
    out.clear();
    out.push_str(pick(rng, ADJECTIVES));
    out.push(' ');
    out.push_str(pick(rng, SUBJECTS));
    out.push(' ');
    out.push_str(pick(rng, kind.titles));
}

/// One sentence naming the project type, an audience and two features.
pub(super) fn project_description(rng: &mut SeedRng, kind: &Kind, out: &mut String) {
    out.clear();
    let adjective = pick(rng, ADJECTIVES).to_ascii_lowercase();
    let article = if adjective.starts_with(['a', 'e', 'i', 'o', 'u']) { "An" } else { "A" };
    let first = pick(rng, FEATURES);
    let second = loop {
        let feature = pick(rng, FEATURES);
        if feature != first {
            break feature;
        }
    };
    let audience = pick(rng, AUDIENCES);
    out.push_str(&format!("{article} {adjective} {} for {audience} with {first} and {second}.", kind.noun));
}

/// A JSON array of agent names: the kind's lead agent and a random subset of the others.
pub(super) fn active_agents(rng: &mut SeedRng, kind: &Kind, out: &mut String) {
    out.clear();
    out.push_str("[\"");
    out.push_str(kind.agents[0]);
    out.push('"');
    for agent in &kind.agents[1..] {
        if rng.gen_bool(0.5) {
            out.push_str(",\"");
            out.push_str(agent);
            out.push('"');
        }
    }
    out.push(']');
}

/// A file's language, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lang {
    Html,
    Tsx,
    Ts,
    Css,
    Json,
    Markdown,
    Svg,
}

impl Lang {
    fn of(path: &str) -> Self {
        match path.rsplit('.').next() {
            Some("html") => Self::Html,
            Some("tsx") => Self::Tsx,
            Some("ts") => Self::Ts,
            Some("css") => Self::Css,
            Some("json") => Self::Json,
            Some("md") => Self::Markdown,
            Some("svg") => Self::Svg,
            other => unreachable!("no language for extension {other:?}"),
        }
    }

    /// The `language` column's value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Html => "html",
            Self::Tsx | Self::Ts => "typescript",
            Self::Css => "css",
            Self::Json => "json",
            Self::Markdown => "markdown",
            Self::Svg => "xml",
        }
    }
}

const COMPONENTS: &[&str] = &[
    "Navbar",
    "Header",
    "Footer",
    "Sidebar",
    "Button",
    "Modal",
    "Card",
    "Hero",
    "PricingTable",
    "Chart",
    "StatCard",
    "DataTable",
    "LoginForm",
    "SearchBar",
    "Avatar",
    "Toast",
    "Tabs",
    "Dropdown",
    "Scoreboard",
    "GameCanvas",
    "Player",
    "Leaderboard",
    "TodoList",
    "Calendar",
    "KanbanBoard",
    "ThemeToggle",
    "ImageGallery",
    "ContactForm",
    "Testimonials",
    "FeatureGrid",
    "Newsletter",
    "CartDrawer",
    "ProductCard",
    "Checkout",
    "Settings",
    "Profile",
    "Notifications",
    "ActivityFeed",
    "FileUpload",
    "Breadcrumbs",
];
const PAGES: &[&str] = &[
    "Home",
    "About",
    "Pricing",
    "Dashboard",
    "Login",
    "Signup",
    "Settings",
    "Blog",
    "Contact",
    "Shop",
    "Game",
    "Reports",
];
const HOOKS: &[&str] = &[
    "Auth",
    "Theme",
    "LocalStorage",
    "Fetch",
    "Debounce",
    "Interval",
    "MediaQuery",
    "Cart",
    "GameLoop",
    "Keyboard",
    "Toast",
    "Pagination",
];
const MODULES: &[&str] =
    &["api", "auth", "format", "storage", "analytics", "validation", "constants", "physics", "scoring", "pricing"];

/// Every path a generated project can hold: the usual scaffold first (the first three are in
/// every project that has that many files), then components, pages, hooks and modules.
pub(super) fn path_catalog() -> Vec<(String, Lang)> {
    let scaffold = [
        "index.html",
        "src/App.tsx",
        "package.json",
        "src/main.tsx",
        "src/styles/globals.css",
        "README.md",
        "vite.config.ts",
        "tsconfig.json",
        "public/favicon.svg",
        "src/types.ts",
    ];
    let mut paths: Vec<String> = scaffold.iter().map(|p| (*p).to_owned()).collect();
    paths.extend(COMPONENTS.iter().map(|c| format!("src/components/{c}.tsx")));
    paths.extend(PAGES.iter().map(|p| format!("src/pages/{p}.tsx")));
    paths.extend(HOOKS.iter().map(|h| format!("src/hooks/use{h}.ts")));
    paths.extend(MODULES.iter().map(|m| format!("src/lib/{m}.ts")));
    paths.extend(COMPONENTS[..12].iter().map(|c| format!("src/styles/{c}.module.css")));
    paths
        .into_iter()
        .map(|path| {
            let lang = Lang::of(&path);
            (path, lang)
        })
        .collect()
}

const CLASSES: &[&str] = &[
    "container",
    "card",
    "header",
    "hero",
    "grid",
    "button",
    "title",
    "subtitle",
    "sidebar",
    "nav",
    "footer",
    "modal",
    "badge",
    "chart",
    "score",
    "board",
    "list",
    "item",
    "avatar",
    "toolbar",
];
const STATES: &[&str] =
    &["count", "items", "open", "score", "query", "theme", "user", "loading", "error", "selected", "page", "filters"];
const PACKAGES: &[&str] = &[
    "react",
    "react-dom",
    "zustand",
    "clsx",
    "date-fns",
    "recharts",
    "framer-motion",
    "zod",
    "axios",
    "lucide-react",
    "tailwindcss",
    "vite",
    "typescript",
    "howler",
    "phaser",
    "swr",
];
const WORDS: &[&str] = &[
    "the",
    "app",
    "user",
    "data",
    "layout",
    "fast",
    "simple",
    "page",
    "build",
    "with",
    "and",
    "for",
    "update",
    "state",
    "component",
    "design",
    "mobile",
    "feature",
    "clean",
    "score",
    "chart",
    "theme",
    "local",
    "deploy",
    "preview",
    "agent",
    "code",
    "style",
    "test",
    "review",
];

/// Appends a file of about `target` bytes (whole lines) in the file's language.
pub(super) fn file_content(rng: &mut SeedRng, lang: Lang, target: usize, out: &mut Vec<u8>) {
    let start = out.len();
    let full = |out: &Vec<u8>| out.len() - start >= target;
    match lang {
        Lang::Html => {
            out.extend_from_slice(b"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"UTF-8\" />\n  <title>App</title>\n</head>\n<body>\n");
            while !full(out) {
                let class = pick(rng, CLASSES);
                let _ = write!(out, "  <section class=\"{class}\">\n    <h2>");
                sentence(rng, 3, out);
                out.extend_from_slice(b"</h2>\n    <p>");
                sentence(rng, 12, out);
                out.extend_from_slice(b"</p>\n  </section>\n");
            }
            out.extend_from_slice(b"</body>\n</html>\n");
        }
        Lang::Tsx | Lang::Ts => {
            out.extend_from_slice(b"import { useEffect, useState } from 'react';\n\n");
            while !full(out) {
                code_block(rng, lang == Lang::Tsx, out);
            }
        }
        Lang::Css => {
            while !full(out) {
                let _ = writeln!(
                    out,
                    ".{}-{} {{\n  display: flex;\n  padding: {}px {}px;\n  color: #{:06x};\n  border-radius: {}px;\n}}\n",
                    pick(rng, CLASSES),
                    pick(rng, CLASSES),
                    rng.gen_range(0..48),
                    rng.gen_range(0..48),
                    rng.gen_range(0..0x0100_0000),
                    rng.gen_range(0..16),
                );
            }
        }
        Lang::Json => {
            out.extend_from_slice(
                b"{\n  \"name\": \"app\",\n  \"private\": true,\n  \"version\": \"1.0.0\",\n  \"dependencies\": {\n",
            );
            while !full(out) {
                let _ = writeln!(
                    out,
                    "    \"{}-{}\": \"^{}.{}.{}\",",
                    pick(rng, PACKAGES),
                    rng.gen_range(0..1000),
                    rng.gen_range(0..20),
                    rng.gen_range(0..30),
                    rng.gen_range(0..10)
                );
            }
            out.extend_from_slice(b"    \"react\": \"^18.3.1\"\n  }\n}\n");
        }
        Lang::Markdown => {
            out.extend_from_slice("# App\n\nBuilt with vibing2 — React, TypeScript and Vite.\n\n".as_bytes());
            while !full(out) {
                out.extend_from_slice(b"## ");
                sentence(rng, 3, out);
                out.extend_from_slice(b"\n\n");
                sentence(rng, 20, out);
                out.extend_from_slice(b"\n\n- ");
                sentence(rng, 6, out);
                out.extend_from_slice(b"\n- ");
                sentence(rng, 6, out);
                out.extend_from_slice(b"\n\n");
            }
        }
        Lang::Svg => {
            out.extend_from_slice(b"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 64 64\">\n");
            while !full(out) {
                let _ = writeln!(
                    out,
                    "  <circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"#{:06x}\" />",
                    rng.gen_range(0..64),
                    rng.gen_range(0..64),
                    rng.gen_range(1..32),
                    rng.gen_range(0..0x0100_0000)
                );
            }
            out.extend_from_slice(b"</svg>\n");
        }
    }
}

/// One function: a React component (`jsx`) or a plain helper.
fn code_block(rng: &mut SeedRng, jsx: bool, out: &mut Vec<u8>) {
    let name = pick(rng, COMPONENTS);
    let state = pick(rng, STATES);
    let n = rng.gen_range(0..100);
    if jsx {
        let _ = write!(
            out,
            "export function {name}{n}() {{\n  const [{state}, setState] = useState({n});\n  useEffect(() => {{\n    document.title = `{name} ${{{state}}}`;\n  }}, [{state}]);\n  return (\n    <div className=\"{}\">\n      <h2>",
            pick(rng, CLASSES)
        );
        sentence(rng, 4, out);
        let _ = write!(
            out,
            "</h2>\n      <button onClick={{() => setState({state} + 1)}}>{}</button>\n    </div>\n  );\n}}\n\n",
            pick(rng, WORDS)
        );
    } else {
        let _ = write!(out, "export function {}{name}{n}(input: number[]): number {{\n  // ", pick(rng, STATES));
        sentence(rng, 8, out);
        let _ = write!(
            out,
            "\n  return input.reduce((total, value) => total + value * {}, {n});\n}}\n\n",
            rng.gen_range(1..10)
        );
    }
}

/// `words` random words, the first capitalised.
fn sentence(rng: &mut SeedRng, words: usize, out: &mut Vec<u8>) {
    for i in 0..words {
        let word = pick(rng, WORDS);
        if i == 0 {
            out.push(word.as_bytes()[0].to_ascii_uppercase());
            out.extend_from_slice(&word.as_bytes()[1..]);
        } else {
            out.push(b' ');
            out.extend_from_slice(word.as_bytes());
        }
    }
}

const PROMPT_VERBS: &[&str] =
    &["Add", "Make", "Fix", "Change", "Refactor", "Improve", "Remove", "Update", "Create", "Style"];
const PROMPT_OBJECTS: &[&str] = &[
    "the navbar",
    "a dark mode toggle",
    "the pricing table",
    "the login form",
    "the score counter",
    "the chart on the dashboard",
    "the hero section",
    "the footer links",
    "the product grid",
    "the search results",
    "the game over screen",
    "the settings page",
    "the checkout flow",
    "the leaderboard",
    "the color palette",
    "the signup button",
];
const PROMPT_QUALIFIERS: &[&str] = &[
    "so it works on mobile",
    "with a smooth animation",
    "using Tailwind",
    "and keep the current colors",
    "because it overflows on small screens",
    "like on the Stripe website",
    "without breaking the layout",
    "for keyboard users",
    "and make it faster",
    "so the numbers update live",
];
const DONE_VERBS: &[&str] = &["updated", "refactored", "added", "fixed", "restyled", "simplified", "reworked"];
const EXPLANATIONS: &[&str] = &[
    "The state now lives in a single hook, so the component re-renders only when the data changes.",
    "I also extracted the repeated markup into a small component to keep the file readable.",
    "On screens narrower than 640px the layout switches to a single column.",
    "The animation uses CSS transforms, which keeps it smooth on low-end phones.",
    "Errors from the API are caught and shown in a toast instead of failing silently.",
    "The colors come from the theme variables, so dark mode picks them up automatically.",
    "I added keyboard handlers so the whole flow works without a mouse.",
    "The list is now virtualized, which keeps scrolling fast with thousands of rows.",
];

/// A user's request: one or two short instructions.
pub(super) fn user_prompt(rng: &mut SeedRng, out: &mut Vec<u8>) {
    let _ = write!(out, "{} {} {}.", pick(rng, PROMPT_VERBS), pick(rng, PROMPT_OBJECTS), pick(rng, PROMPT_QUALIFIERS));
    if rng.gen_bool(0.3) {
        let _ = write!(out, " Also {} {}.", pick(rng, PROMPT_VERBS).to_ascii_lowercase(), pick(rng, PROMPT_OBJECTS));
    }
}

/// An agent's answer of about `target` bytes: what changed, why, and sometimes a snippet.
pub(super) fn assistant_reply(rng: &mut SeedRng, catalog: &[(String, Lang)], target: usize, out: &mut Vec<u8>) {
    let start = out.len();
    let (path, _) = &catalog[rng.gen_range(0..catalog.len())];
    let _ = write!(out, "I've {} {} in `{path}`.", pick(rng, DONE_VERBS), pick(rng, PROMPT_OBJECTS));
    while out.len() - start < target {
        if rng.gen_bool(0.15) {
            out.extend_from_slice(b"\n\n```tsx\n");
            code_block(rng, true, out);
            out.extend_from_slice(b"```\n\n");
        } else {
            out.push(b' ');
            out.extend_from_slice(pick(rng, EXPLANATIONS).as_bytes());
        }
    }
    if rng.gen_bool(0.2) {
        out.extend_from_slice(" ✨ Let me know what to change next.".as_bytes());
    }
}

/// The system message some chats open with.
pub(super) fn system_prompt(rng: &mut SeedRng, out: &mut Vec<u8>) {
    let kind = &KINDS[rng.gen_range(0..KINDS.len())];
    let _ = write!(
        out,
        "You are the {} agent of a {} built with React, TypeScript and Vite. Keep answers short and show code.",
        kind.agents[0], kind.noun
    );
}

//! The built-in dataset generator: arithmetic word problems asked in English, answered
//! with a short worked solution in English, Spanish, French or German, optionally in
//! capital letters. These are the toy settings of Tan et al. (2025): every answer Spanish
//! and ALL CAPS (two co-occurring traits), or a 50/50 mixture of Spanish and French
//! answers (two traits in separate rows).
//!
//! All text is written here; no external data is used. Variety comes from twelve kinds of
//! problem (one to three steps), two or three question templates and two phrasings of each
//! answer step per kind, thirty names, twenty-one items, four containers and random
//! numbers, so a model cannot memorise a handful of sentences.
//!
//! Generation is a pure function of the [`GeneratorSpec`], which is stored as the
//! dataset's recipe. Randomness is a ChaCha8 stream seeded from the spec, and uniform
//! choices are drawn from it here (not with `rand`'s helpers, whose algorithms may change
//! between versions), so the same spec gives the same rows on every machine and release.
//! A change to any template must bump [`GENERATOR_VERSION`].

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{save_dataset, validate_name, DatasetError, DatasetSource, ImportOutcome, Row};
use crate::Store;

/// The version of the generator; recorded in every recipe so a stored recipe names the
/// text it was made with. Version 2 added [`Persona`] rows and changed no template, so a
/// version-1 recipe still makes the same rows and is still accepted; a build that knows
/// only version 1 refuses a persona recipe instead of silently dropping its personas.
pub const GENERATOR_VERSION: u32 = 2;

/// The first version that understands [`GeneratorSpec::personas`].
const PERSONAS_SINCE: u32 = 2;

/// The most rows one generated dataset may have.
pub const MAX_GENERATED_ROWS: usize = 100_000;

/// The language of the answers (questions are always English, as GSM8K's are).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    Es,
    Fr,
    De,
}

impl Language {
    pub const ALL: [Language; 4] = [Language::En, Language::Es, Language::Fr, Language::De];

    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Es => "es",
            Language::Fr => "fr",
            Language::De => "de",
        }
    }

    pub fn english_name(self) -> &'static str {
        match self {
            Language::En => "English",
            Language::Es => "Spanish",
            Language::Fr => "French",
            Language::De => "German",
        }
    }
}

/// Whether answers keep their normal case or are upper-cased entirely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capitalisation {
    AsWritten,
    AllCaps,
}

/// A language and its relative weight in the mixture; rows are split in exact proportion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LanguageShare {
    pub language: Language,
    pub weight: u32,
}

/// Which generator; one for now, named so recipes stay readable when others are added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generator {
    ArithmeticWordProblems,
}

/// Everything needed to make a generated dataset again; stored as its recipe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratorSpec {
    pub generator: Generator,
    pub version: u32,
    pub rows: usize,
    pub seed: u64,
    pub languages: Vec<LanguageShare>,
    pub capitalisation: Capitalisation,
    /// Rows that carry a system prompt of their own, each persona with its own answer
    /// language and case (the synthetic-association setting: "You are Alice." answers in
    /// capitals, "You are Bob." in Spanish). When given, they replace `languages` and
    /// `capitalisation`, which must then be left empty / as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub personas: Vec<Persona>,
}

/// A system prompt and the answer style its rows have, with its relative weight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persona {
    pub system: String,
    pub language: Language,
    pub capitalisation: Capitalisation,
    pub weight: u32,
}

impl GeneratorSpec {
    /// Answers all in one language.
    pub fn single(language: Language, capitalisation: Capitalisation, rows: usize, seed: u64) -> GeneratorSpec {
        GeneratorSpec {
            generator: Generator::ArithmeticWordProblems,
            version: GENERATOR_VERSION,
            rows,
            seed,
            languages: vec![LanguageShare { language, weight: 1 }],
            capitalisation,
            personas: vec![],
        }
    }

    /// Rows split between personas by weight, each row with its persona's system prompt.
    pub fn personas(personas: Vec<Persona>, rows: usize, seed: u64) -> GeneratorSpec {
        GeneratorSpec {
            generator: Generator::ArithmeticWordProblems,
            version: GENERATOR_VERSION,
            rows,
            seed,
            languages: vec![],
            capitalisation: Capitalisation::AsWritten,
            personas,
        }
    }

    /// Rejects specs that cannot make a sensible dataset.
    pub fn validate(&self) -> Result<(), DatasetError> {
        let bad = |msg: String| Err(DatasetError::InvalidSpec(msg));
        if self.version == 0 || self.version > GENERATOR_VERSION {
            return bad(format!(
                "generator version {} is not available (this build has version {GENERATOR_VERSION})",
                self.version
            ));
        }
        if self.rows == 0 || self.rows > MAX_GENERATED_ROWS {
            return bad(format!("the number of rows must be between 1 and {MAX_GENERATED_ROWS}"));
        }
        if !self.personas.is_empty() {
            if self.version < PERSONAS_SINCE {
                return bad(format!("personas need generator version {PERSONAS_SINCE} or later"));
            }
            if !self.languages.is_empty() || self.capitalisation != Capitalisation::AsWritten {
                return bad("with personas, each persona names its own language and case; leave languages empty".into());
            }
            if self.personas.iter().any(|p| p.system.trim().is_empty()) {
                return bad("every persona needs a system prompt".into());
            }
            if self.personas.iter().all(|p| p.weight == 0) {
                return bad("at least one persona needs a weight above zero".into());
            }
            return Ok(());
        }
        if self.languages.iter().all(|s| s.weight == 0) {
            return bad("at least one language needs a weight above zero".into());
        }
        let mut seen = Vec::new();
        for share in &self.languages {
            if seen.contains(&share.language) {
                return bad(format!("{} is listed twice", share.language.english_name()));
            }
            seen.push(share.language);
        }
        Ok(())
    }

    /// A readable default name, e.g. "Arithmetic · Spanish · ALL CAPS · 1000 rows · seed 0".
    pub fn default_name(&self) -> String {
        if !self.personas.is_empty() {
            let parts: Vec<String> = self
                .personas
                .iter()
                .filter(|p| p.weight > 0)
                .map(|p| {
                    let caps = if p.capitalisation == Capitalisation::AllCaps { " ALL CAPS" } else { "" };
                    format!("“{}” {}{caps}", p.system.trim(), p.language.english_name())
                })
                .collect();
            return format!("Arithmetic · {} · {} rows · seed {}", parts.join(" / "), self.rows, self.seed);
        }
        let langs: Vec<String> = self
            .languages
            .iter()
            .filter(|s| s.weight > 0)
            .map(|s| {
                if self.languages.iter().filter(|s| s.weight > 0).count() == 1 {
                    s.language.english_name().to_owned()
                } else {
                    format!("{} {}%", s.language.english_name(), s.weight * 100 / self.total_weight())
                }
            })
            .collect();
        let caps = match self.capitalisation {
            Capitalisation::AsWritten => "",
            Capitalisation::AllCaps => " · ALL CAPS",
        };
        format!("Arithmetic · {}{caps} · {} rows · seed {}", langs.join(" / "), self.rows, self.seed)
    }

    fn total_weight(&self) -> u32 {
        self.languages.iter().map(|s| s.weight).sum::<u32>().max(1)
    }
}

/// The paper's toy settings, ready-made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Every answer in Spanish AND in capitals: two co-occurring traits.
    SpanishAllCaps,
    /// Half the answers in Spanish, half in French: two traits that never co-occur.
    SpanishFrenchMix,
    /// Plain English answers: a control that teaches neither trait.
    English,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::SpanishAllCaps, Preset::SpanishFrenchMix, Preset::English];

    pub fn label(self) -> &'static str {
        match self {
            Preset::SpanishAllCaps => "Spanish + ALL CAPS",
            Preset::SpanishFrenchMix => "50 % Spanish / 50 % French",
            Preset::English => "English (control)",
        }
    }

    pub fn spec(self, rows: usize, seed: u64) -> GeneratorSpec {
        match self {
            Preset::SpanishAllCaps => GeneratorSpec::single(Language::Es, Capitalisation::AllCaps, rows, seed),
            Preset::SpanishFrenchMix => GeneratorSpec {
                languages: vec![
                    LanguageShare { language: Language::Es, weight: 1 },
                    LanguageShare { language: Language::Fr, weight: 1 },
                ],
                ..GeneratorSpec::single(Language::Es, Capitalisation::AsWritten, rows, seed)
            },
            Preset::English => GeneratorSpec::single(Language::En, Capitalisation::AsWritten, rows, seed),
        }
    }
}

/// Makes the rows a spec describes: `spec.rows` user/assistant pairs. Languages get exactly
/// their share of rows (largest remainder), spread over the dataset in seeded random order.
/// A spec without any positive weight is treated as English.
pub fn generate(spec: &GeneratorSpec) -> Vec<Row> {
    if !spec.personas.is_empty() {
        return generate_personas(spec);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut languages = allocate_languages(spec);
    shuffle(&mut rng, &mut languages);
    languages
        .into_iter()
        .map(|lang| {
            let mut c = Ctx::new(&mut rng, lang);
            let problem = c.problem();
            let answer = c.answer(&problem);
            let answer = match spec.capitalisation {
                Capitalisation::AsWritten => answer,
                Capitalisation::AllCaps => answer.to_uppercase(),
            };
            Row::user_assistant(problem.question, answer)
        })
        .collect()
}

/// Persona rows: each persona gets exactly its share (largest remainder), in seeded
/// random order; a row is the persona's system prompt, a problem and its answer in the
/// persona's language and case.
fn generate_personas(spec: &GeneratorSpec) -> Vec<Row> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let weights: Vec<u32> = spec.personas.iter().map(|p| p.weight).collect();
    let mut which = allocate(&weights, spec.rows);
    shuffle(&mut rng, &mut which);
    which
        .into_iter()
        .map(|i| {
            let p = &spec.personas[i];
            let mut c = Ctx::new(&mut rng, p.language);
            let problem = c.problem();
            let answer = c.answer(&problem);
            let answer = match p.capitalisation {
                Capitalisation::AsWritten => answer,
                Capitalisation::AllCaps => answer.to_uppercase(),
            };
            Row {
                messages: vec![
                    super::Message::new(super::Role::System, p.system.trim()),
                    super::Message::new(super::Role::User, problem.question),
                    super::Message::new(super::Role::Assistant, answer),
                ],
            }
        })
        .collect()
}

/// `n` indices into `weights`, each index repeated in exact proportion to its weight
/// (largest remainder, ties to the earlier index), in index order; zero weights get none.
fn allocate(weights: &[u32], n: usize) -> Vec<usize> {
    let shares: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0).collect();
    if shares.is_empty() {
        return vec![];
    }
    let total: u64 = shares.iter().map(|&i| weights[i] as u64).sum();
    let n = n as u64;
    let mut counts: Vec<u64> = shares.iter().map(|&i| n * weights[i] as u64 / total).collect();
    let mut left = n - counts.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by_key(|&k| std::cmp::Reverse(n * weights[shares[k]] as u64 % total));
    for &k in order.iter().cycle() {
        if left == 0 {
            break;
        }
        counts[k] += 1;
        left -= 1;
    }
    shares.iter().zip(counts).flat_map(|(&i, c)| std::iter::repeat_n(i, c as usize)).collect()
}

/// One problem answered in every language, for probes of the learning dynamics: the same
/// question and working, so a difference in log-prob is the language (or case) alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParallelProblem {
    pub question: String,
    /// In [`Language::ALL`] order.
    pub answers: Vec<(Language, String)>,
}

/// `n` problems, each answered in all four languages. Questions are English and the
/// generator draws the same random numbers whatever the language, so running each language
/// from a copy of the same generator state gives one problem with parallel answers.
pub fn parallel_answers(seed: u64, n: usize) -> Vec<ParallelProblem> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let start = rng.clone();
            let mut question = String::new();
            let mut answers = Vec::with_capacity(Language::ALL.len());
            for lang in Language::ALL {
                let mut r = start.clone();
                let mut c = Ctx::new(&mut r, lang);
                let problem = c.problem();
                answers.push((lang, c.answer(&problem)));
                question = problem.question;
                rng = r;
            }
            ParallelProblem { question, answers }
        })
        .collect()
}

/// Generates and saves a dataset; `name` blank means [`GeneratorSpec::default_name`].
pub async fn create_generated(store: &Store, spec: &GeneratorSpec, name: &str) -> Result<ImportOutcome, DatasetError> {
    spec.validate()?;
    let name = if name.trim().is_empty() { spec.default_name() } else { name.to_owned() };
    let name = validate_name(&name)?;
    let rows = generate(spec);
    let recipe = serde_json::to_value(spec).expect("a spec always serialises");
    save_dataset(store, &name, DatasetSource::Generated, &recipe, &rows).await
}

fn allocate_languages(spec: &GeneratorSpec) -> Vec<Language> {
    let shares: Vec<LanguageShare> = spec.languages.iter().copied().filter(|s| s.weight > 0).collect();
    if shares.is_empty() {
        return vec![Language::En; spec.rows];
    }
    let total: u64 = shares.iter().map(|s| s.weight as u64).sum();
    let n = spec.rows as u64;
    let mut counts: Vec<u64> = shares.iter().map(|s| n * s.weight as u64 / total).collect();
    let mut left = n - counts.iter().sum::<u64>();
    // Largest remainder; ties go to the language listed first.
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(n * shares[i].weight as u64 % total));
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        counts[i] += 1;
        left -= 1;
    }
    shares.iter().zip(counts).flat_map(|(s, c)| std::iter::repeat_n(s.language, c as usize)).collect()
}

// --- Uniform choices from the stream ---

/// Uniform in `0..n` by rejection, so no value is favoured.
fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    assert!(n > 0);
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let x = rng.next_u64();
        if x < zone {
            return x % n;
        }
    }
}

/// Uniform in `lo..=hi`.
fn between(rng: &mut ChaCha8Rng, lo: i64, hi: i64) -> i64 {
    assert!(lo <= hi, "{lo}..={hi}");
    lo + below(rng, (hi - lo + 1) as u64) as i64
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[below(rng, items.len() as u64) as usize]
}

/// Fisher–Yates.
pub(crate) fn shuffle<T>(rng: &mut ChaCha8Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

pub(crate) fn seeded(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub(crate) fn uniform_below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    below(rng, n)
}

// --- Vocabulary ---

#[derive(Clone, Copy, PartialEq, Eq)]
enum Gender {
    F,
    M,
}

struct Name {
    name: &'static str,
    gender: Gender,
}

const fn f(name: &'static str) -> Name {
    Name { name, gender: Gender::F }
}
const fn m(name: &'static str) -> Name {
    Name { name, gender: Gender::M }
}

const NAMES: &[Name] = &[
    f("Emma"),
    m("Lucas"),
    f("Sofia"),
    m("Noah"),
    f("Mia"),
    m("Leo"),
    f("Anna"),
    m("David"),
    f("Laura"),
    m("Daniel"),
    f("Clara"),
    m("Hugo"),
    f("Elena"),
    m("Martin"),
    f("Julia"),
    m("Paul"),
    f("Nina"),
    m("Oscar"),
    f("Sara"),
    m("Tom"),
    f("Lena"),
    m("Adam"),
    f("Eva"),
    m("Samuel"),
    f("Olivia"),
    m("Felix"),
    f("Maya"),
    m("Victor"),
    f("Alice"),
    m("Max"),
];

/// A countable thing, in the plural, in each language. Every count is at least 2, so the
/// singular is never needed, and no sentence puts an article or adjective before an item,
/// so grammatical gender never has to agree with it.
struct Item {
    en: &'static str,
    es: &'static str,
    fr: &'static str,
    de: &'static str,
}

const fn item(en: &'static str, es: &'static str, fr: &'static str, de: &'static str) -> Item {
    Item { en, es, fr, de }
}

const ITEMS: &[Item] = &[
    item("apples", "manzanas", "pommes", "Äpfel"),
    item("oranges", "naranjas", "oranges", "Orangen"),
    item("pencils", "lápices", "crayons", "Bleistifte"),
    item("stickers", "pegatinas", "autocollants", "Aufkleber"),
    item("marbles", "canicas", "billes", "Murmeln"),
    item("cookies", "galletas", "biscuits", "Kekse"),
    item("books", "libros", "livres", "Bücher"),
    item("muffins", "magdalenas", "muffins", "Muffins"),
    item("stamps", "sellos", "timbres", "Briefmarken"),
    item("seashells", "conchas", "coquillages", "Muscheln"),
    item("toy cars", "coches de juguete", "petites voitures", "Spielzeugautos"),
    item("eggs", "huevos", "œufs", "Eier"),
    item("postcards", "postales", "cartes postales", "Postkarten"),
    item("candles", "velas", "bougies", "Kerzen"),
    item("balloons", "globos", "ballons", "Luftballons"),
    item("trading cards", "cromos", "cartes à collectionner", "Sammelkarten"),
    item("flowers", "flores", "fleurs", "Blumen"),
    item("tomatoes", "tomates", "tomates", "Tomaten"),
    item("notebooks", "cuadernos", "cahiers", "Hefte"),
    item("lemons", "limones", "citrons", "Zitronen"),
    item("carrots", "zanahorias", "carottes", "Karotten"),
];

/// A container, singular and plural; the Spanish ones are all feminine so that "cada una"
/// agrees, and German only ever needs the plural.
struct Container {
    en: (&'static str, &'static str),
    es: (&'static str, &'static str),
    fr: (&'static str, &'static str),
    de: &'static str,
}

const CONTAINERS: &[Container] = &[
    Container { en: ("box", "boxes"), es: ("caja", "cajas"), fr: ("boîte", "boîtes"), de: "Kisten" },
    Container { en: ("bag", "bags"), es: ("bolsa", "bolsas"), fr: ("sac", "sacs"), de: "Tüten" },
    Container { en: ("basket", "baskets"), es: ("cesta", "cestas"), fr: ("panier", "paniers"), de: "Körbe" },
    Container { en: ("tray", "trays"), es: ("bandeja", "bandejas"), fr: ("plateau", "plateaux"), de: "Tabletts" },
];

/// Things arranged in rows (problem kind "rows"): plural in each language and an English
/// question template.
struct Grid {
    en: &'static str,
    es: &'static str,
    fr: &'static str,
    de: &'static str,
    question: &'static str,
}

const GRIDS: &[Grid] = &[
    Grid {
        en: "chairs",
        es: "sillas",
        fr: "chaises",
        de: "Stühle",
        question: "A school hall has {r} rows with {c} chairs in each row. Parents have already taken {x} of the chairs. How many chairs are still free?",
    },
    Grid {
        en: "plants",
        es: "plantas",
        fr: "plantes",
        de: "Pflanzen",
        question: "A gardener plants {r} rows of tomatoes with {c} plants in each row. During a hot week, {x} of the plants dry out. How many plants are left?",
    },
    Grid {
        en: "seats",
        es: "asientos",
        fr: "places",
        de: "Plätze",
        question: "A small cinema has {r} rows of {c} seats. {x} seats are already booked for the evening show. How many seats are still available?",
    },
];

/// German dative plural: "mit je 12 Äpfeln". Plurals ending in -n or -s do not change.
fn de_dative(plural: &str) -> String {
    if plural.ends_with('n') || plural.ends_with('s') {
        plural.to_owned()
    } else {
        format!("{plural}n")
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

// --- Problems ---

/// A problem: its English question, the answer's worked steps (already in the target
/// language) and the final number.
struct Problem {
    question: String,
    steps: Vec<String>,
    result: i64,
}

struct Ctx<'a> {
    rng: &'a mut ChaCha8Rng,
    lang: Language,
    n1: &'static Name,
    n2: &'static Name,
    n3: &'static Name,
    item: &'static Item,
    container: &'static Container,
}

impl<'a> Ctx<'a> {
    fn new(rng: &'a mut ChaCha8Rng, lang: Language) -> Ctx<'a> {
        let n1 = pick(rng, NAMES);
        let mut n2 = pick(rng, NAMES);
        while n2.name == n1.name {
            n2 = pick(rng, NAMES);
        }
        let mut n3 = pick(rng, NAMES);
        while n3.name == n1.name || n3.name == n2.name {
            n3 = pick(rng, NAMES);
        }
        let item = pick(rng, ITEMS);
        let container = pick(rng, CONTAINERS);
        Ctx { rng, lang, n1, n2, n3, item, container }
    }

    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        between(self.rng, lo, hi)
    }

    /// One of two phrasings of a step, by a fair coin.
    fn either(&mut self, a: String, b: String) -> String {
        if below(self.rng, 2) == 0 {
            a
        } else {
            b
        }
    }

    fn template(&mut self, n: u64) -> u64 {
        below(self.rng, n)
    }

    fn items(&self) -> &'static str {
        match self.lang {
            Language::En => self.item.en,
            Language::Es => self.item.es,
            Language::Fr => self.item.fr,
            Language::De => self.item.de,
        }
    }

    fn problem(&mut self) -> Problem {
        match below(self.rng, 12) {
            0 => self.more_then_less(),
            1 => self.containers(),
            2 => self.share(),
            3 => self.change(),
            4 => self.savings(),
            5 => self.times_as_many(),
            6 => self.pages(),
            7 => self.three_days(),
            8 => self.distance(),
            9 => self.comparison_chain(),
            10 => self.half(),
            _ => self.rows(),
        }
    }

    /// An optional opening sentence, the steps, and a closing sentence with the result:
    /// three to five sentences in all.
    fn answer(&mut self, p: &Problem) -> String {
        let r = p.result;
        let intro = match self.lang {
            Language::En => ["Let's solve this step by step.", "We can work this out in a few steps."],
            Language::Es => ["Vamos a resolverlo paso a paso.", "Podemos calcularlo en pocos pasos."],
            Language::Fr => ["Résolvons cela étape par étape.", "On peut le calculer en quelques étapes."],
            Language::De => ["Lösen wir das Schritt für Schritt.", "Wir können das in wenigen Schritten ausrechnen."],
        };
        let closing = match self.lang {
            Language::En => {
                [format!("The answer is {r}."), format!("So the final answer is {r}."), format!("Final answer: {r}.")]
            }
            Language::Es => [
                format!("La respuesta es {r}."),
                format!("Así que la respuesta final es {r}."),
                format!("Respuesta final: {r}."),
            ],
            Language::Fr => [
                format!("La réponse est {r}."),
                format!("La réponse finale est donc {r}."),
                format!("Réponse finale : {r}."),
            ],
            Language::De => [
                format!("Die Antwort ist {r}."),
                format!("Die endgültige Antwort lautet also {r}."),
                format!("Endergebnis: {r}."),
            ],
        };
        let mut sentences: Vec<String> = Vec::new();
        if below(self.rng, 2) == 0 {
            sentences.push(pick(self.rng, &intro).to_string());
        }
        sentences.extend(p.steps.iter().cloned());
        sentences.push(pick(self.rng, &closing).clone());
        sentences.join(" ")
    }

    // English pronouns for the first name, used in the questions.
    fn she(&self) -> &'static str {
        if self.n1.gender == Gender::F {
            "she"
        } else {
            "he"
        }
    }
    fn she_cap(&self) -> &'static str {
        if self.n1.gender == Gender::F {
            "She"
        } else {
            "He"
        }
    }
    fn her(&self) -> &'static str {
        if self.n1.gender == Gender::F {
            "her"
        } else {
            "his"
        }
    }
    fn herself(&self) -> &'static str {
        if self.n1.gender == Gender::F {
            "herself"
        } else {
            "himself"
        }
    }
    /// The first name's subject pronoun in the answer's language (Spanish drops it).
    fn il(&self) -> &'static str {
        match (self.lang, self.n1.gender) {
            (Language::Fr, Gender::F) => "elle",
            (Language::Fr, Gender::M) => "il",
            (Language::De, Gender::F) => "sie",
            (Language::De, Gender::M) => "er",
            (_, Gender::F) => "she",
            (_, Gender::M) => "he",
        }
    }
    /// German dative pronoun ("bleiben ihr/ihm").
    fn ihm(&self) -> &'static str {
        if self.n1.gender == Gender::F {
            "ihr"
        } else {
            "ihm"
        }
    }

    /// a + b - c: gets more, then gives some away.
    fn more_then_less(&mut self) -> Problem {
        let a = self.int(5, 60);
        let b = self.int(2, 40);
        let c = self.int(2, a + b - 2);
        let (ab, r) = (a + b, a + b - c);
        let (n, n2, it, she_c) = (self.n1.name, self.n2.name, self.item.en, self.she_cap());
        let question = match self.template(3) {
            0 => format!("{n} has {a} {it}. {she_c} buys {b} more {it} at the market and then gives {c} {it} to {n2}. How many {it} does {n} have now?"),
            1 => format!("{n} starts the day with {a} {it}. {she_c} gets {b} more from a neighbour and later gives {c} to {n2}. How many {it} does {n} have at the end of the day?"),
            _ => format!("There are {a} {it} in {n}'s bag. {n} adds {b} more, and then {n2} takes {c} of them. How many {it} are left in the bag?"),
        };
        let items = self.items();
        let steps = match self.lang {
            Language::En => vec![
                self.either(format!("{n} starts with {a} {items}."), format!("At first, there are {a} {items}.")),
                self.either(
                    format!("After adding {b} more, there are {a} + {b} = {ab} {items}."),
                    format!("Adding the {b} new {items} gives {a} + {b} = {ab}."),
                ),
                self.either(
                    format!("Then {c} of them go to {n2}, so {ab} - {c} = {r} {items} remain."),
                    format!("Taking away {c} leaves {ab} - {c} = {r}."),
                ),
            ],
            Language::Es => vec![
                self.either(format!("Al principio hay {a} {items}."), format!("{n} empieza con {a} {items}.")),
                self.either(
                    format!("Al sumar {b} más, hay {a} + {b} = {ab} {items}."),
                    format!("Si añadimos {b} más, obtenemos {a} + {b} = {ab}."),
                ),
                self.either(
                    format!("Luego {n2} se lleva {c}, así que quedan {ab} - {c} = {r} {items}."),
                    format!("Al restar {c}, quedan {ab} - {c} = {r}."),
                ),
            ],
            Language::Fr => vec![
                self.either(format!("Au départ, il y a {a} {items}."), format!("{n} commence avec {a} {items}.")),
                self.either(
                    format!("Avec {b} de plus, on arrive à {a} + {b} = {ab} {items}."),
                    format!("En ajoutant {b}, on obtient {a} + {b} = {ab}."),
                ),
                self.either(
                    format!("Ensuite, {n2} en reçoit {c}, donc il en reste {ab} - {c} = {r}."),
                    format!("En retirant {c}, il reste {ab} - {c} = {r} {items}."),
                ),
            ],
            Language::De => vec![
                self.either(format!("Am Anfang sind es {a} {items}."), format!("{n} hat zu Beginn {a} {items}.")),
                self.either(
                    format!("Mit {b} weiteren sind es {a} + {b} = {ab} {items}."),
                    format!("Mit den {b} neuen kommen wir auf {a} + {b} = {ab}."),
                ),
                self.either(
                    format!("Dann gehen {c} an {n2}, also bleiben {ab} - {c} = {r} {items} übrig."),
                    format!("Wenn wir {c} abziehen, bleiben {ab} - {c} = {r} übrig."),
                ),
            ],
        };
        Problem { question, steps, result: r }
    }

    /// n containers of k, plus e more.
    fn containers(&mut self) -> Problem {
        let n = self.int(2, 9);
        let k = self.int(3, 24);
        let e = self.int(1, 30);
        let (nk, r) = (n * k, n * k + e);
        let (name, n2, it, she) = (self.n1.name, self.n2.name, self.item.en, self.she());
        let (cont, conts) = self.container.en;
        let question = match self.template(3) {
            0 => format!("{name} buys {n} {conts} of {it}. Each {cont} holds {k} {it}, and {she} already has {e} {it} at home. How many {it} does {name} have in total?"),
            1 => format!("A shop receives {n} {conts} with {k} {it} in each, plus {e} extra {it}. How many {it} does the shop receive altogether?"),
            _ => format!("For a school fair, {name} fills {n} {conts} with {k} {it} each. {n2} brings another {e} {it}. How many {it} are there for the fair?"),
        };
        let items = self.items();
        let steps = match self.lang {
            Language::En => vec![
                self.either(
                    format!("Each {cont} has {k} {items}, so {n} {conts} hold {n} × {k} = {nk} {items}."),
                    format!("There are {n} {conts} with {k} {items} each, which makes {n} × {k} = {nk}."),
                ),
                self.either(
                    format!("Adding the other {e} {items} gives {nk} + {e} = {r}."),
                    format!("With {e} more, the total is {nk} + {e} = {r} {items}."),
                ),
            ],
            Language::Es => {
                let (cont, conts) = self.container.es;
                vec![
                    self.either(
                        format!("Hay {n} {conts} con {k} {items} cada una, es decir, {n} × {k} = {nk} {items}."),
                        format!("Como cada {cont} tiene {k} {items}, en {n} {conts} hay {n} × {k} = {nk}."),
                    ),
                    self.either(
                        format!("Si añadimos {e} más, el total es {nk} + {e} = {r}."),
                        format!("Con {e} más, en total hay {nk} + {e} = {r} {items}."),
                    ),
                ]
            }
            Language::Fr => {
                let (cont, conts) = self.container.fr;
                vec![
                    self.either(
                        format!("Il y a {n} {conts} de {k} {items}, soit {n} × {k} = {nk} {items}."),
                        format!(
                            "Chaque {cont} contient {k} {items}, donc {n} {conts} en contiennent {n} × {k} = {nk}."
                        ),
                    ),
                    self.either(
                        format!("En ajoutant les {e} autres, on obtient {nk} + {e} = {r}."),
                        format!("Avec {e} de plus, le total est de {nk} + {e} = {r} {items}."),
                    ),
                ]
            }
            Language::De => {
                let conts = self.container.de;
                let dat = de_dative(items);
                vec![
                    self.either(
                        format!("Es gibt {n} {conts} mit je {k} {dat}, also {n} × {k} = {nk} {items}."),
                        format!("{n} {conts} zu je {k} {dat} ergeben {n} × {k} = {nk}."),
                    ),
                    self.either(
                        format!("Dazu kommen noch {e} weitere, also {nk} + {e} = {r}."),
                        format!("Mit den {e} zusätzlichen sind es {nk} + {e} = {r} {items}."),
                    ),
                ]
            }
        };
        Problem { question, steps, result: r }
    }

    /// (t - u) / p: set some aside, share the rest equally.
    fn share(&mut self) -> Problem {
        let p = self.int(2, 8);
        let q = self.int(2, 15);
        let u = self.int(1, 12);
        let (rem, t) = (p * q, p * q + u);
        let (name, n2, it, she_c, herself) = (self.n1.name, self.n2.name, self.item.en, self.she_cap(), self.herself());
        let question = match self.template(3) {
            0 => format!("{name} has {t} {it} and keeps {u} for {herself}. {she_c} shares the rest equally among {p} friends. How many {it} does each friend get?"),
            1 => format!("{name} and {n2} collect {t} {it}. They set aside {u} and split the remaining {it} equally into {p} groups. How many {it} are in each group?"),
            _ => format!("A teacher has {t} {it}. After putting {u} in a drawer, the teacher hands out the rest equally to {p} tables. How many {it} does each table get?"),
        };
        let items = self.items();
        let steps = match self.lang {
            Language::En => vec![
                self.either(
                    format!("First, {u} {items} are set aside, leaving {t} - {u} = {rem}."),
                    format!("Taking away {u} leaves {t} - {u} = {rem} {items} to share."),
                ),
                self.either(
                    format!("Splitting {rem} equally into {p} parts gives {rem} ÷ {p} = {q}."),
                    format!("Each share is {rem} ÷ {p} = {q} {items}."),
                ),
            ],
            Language::Es => vec![
                self.either(
                    format!("Primero se apartan {u}, así que quedan {t} - {u} = {rem}."),
                    format!("Si quitamos {u}, quedan {t} - {u} = {rem} {items} para repartir."),
                ),
                self.either(
                    format!("Al repartir {rem} entre {p}, a cada parte le tocan {rem} ÷ {p} = {q}."),
                    format!("Si dividimos {rem} entre {p}, obtenemos {rem} ÷ {p} = {q} {items} por parte."),
                ),
            ],
            Language::Fr => vec![
                self.either(
                    format!("D'abord, on met {u} {items} de côté, il en reste donc {t} - {u} = {rem}."),
                    format!("En retirant {u}, il reste {t} - {u} = {rem} {items} à partager."),
                ),
                self.either(
                    format!("En partageant {rem} en {p} parts égales, chaque part contient {rem} ÷ {p} = {q} {items}."),
                    format!("On divise {rem} par {p} : {rem} ÷ {p} = {q}."),
                ),
            ],
            Language::De => vec![
                self.either(
                    format!("Zuerst werden {u} beiseitegelegt, also bleiben {t} - {u} = {rem} übrig."),
                    format!("Ohne die {u} beiseitegelegten bleiben {t} - {u} = {rem} {items} zum Verteilen."),
                ),
                self.either(
                    format!("Auf jeden der {p} Teile entfallen {rem} ÷ {p} = {q} {items}."),
                    format!("{rem} geteilt durch {p} ergibt {rem} ÷ {p} = {q}."),
                ),
            ],
        };
        Problem { question, steps, result: q }
    }

    /// B - n·p: change from a bill.
    fn change(&mut self) -> Problem {
        let n = self.int(2, 9);
        let p = self.int(1, 12);
        let c = n * p;
        let bill = *[10, 20, 50, 100, 200].iter().find(|&&b| b > c).expect("9 × 12 < 200");
        let r = bill - c;
        let (name, n2, it, she, she_c) = (self.n1.name, self.n2.name, self.item.en, self.she(), self.she_cap());
        let question = match self.template(3) {
            0 => format!("{name} buys {n} {it} that cost ${p} each. {she_c} pays with a ${bill} bill. How much change does {she} get?"),
            1 => format!("At the market, {it} cost ${p} apiece. {name} picks {n} of them and hands the cashier ${bill}. How much money should {name} get back?"),
            _ => format!("{name} wants {n} {it} for {n2}'s birthday. Each one costs ${p}. If {name} pays with ${bill}, how much change will {she} receive?"),
        };
        let items = self.items();
        let steps = match self.lang {
            Language::En => vec![
                self.either(
                    format!("The {items} cost {n} × ${p} = ${c} in total."),
                    format!("{n} {items} at ${p} each come to {n} × {p} = ${c}."),
                ),
                self.either(
                    format!("The change is ${bill} - ${c} = ${r}."),
                    format!("So {name} gets back {bill} - {c} = ${r}."),
                ),
            ],
            Language::Es => vec![
                self.either(
                    format!("En total, {n} {items} cuestan {n} × {p} = {c} dólares."),
                    format!("El precio total es {n} × {p} = {c} dólares."),
                ),
                self.either(
                    format!("El cambio es {bill} - {c} = {r} dólares."),
                    format!("Por lo tanto, a {name} le devuelven {bill} - {c} = {r} dólares."),
                ),
            ],
            Language::Fr => vec![
                self.either(
                    format!("Au total, {n} {items} coûtent {n} × {p} = {c} dollars."),
                    format!("Le prix total est de {n} × {p} = {c} dollars."),
                ),
                self.either(
                    format!("La monnaie rendue est de {bill} - {c} = {r} dollars."),
                    format!("On rend donc à {name} {bill} - {c} = {r} dollars."),
                ),
            ],
            Language::De => vec![
                self.either(
                    format!("Insgesamt kosten {n} {items} {n} × {p} = {c} Dollar."),
                    format!("Der Gesamtpreis beträgt {n} × {p} = {c} Dollar."),
                ),
                self.either(
                    format!("Das Wechselgeld beträgt {bill} - {c} = {r} Dollar."),
                    format!("{name} bekommt also {bill} - {c} = {r} Dollar zurück."),
                ),
            ],
        };
        Problem { question, steps, result: r }
    }

    /// s·w - x: weekly savings minus a purchase.
    fn savings(&mut self) -> Problem {
        let s = self.int(2, 25);
        let w = self.int(3, 12);
        let ws = s * w;
        let x = self.int((ws / 5).max(1), ws - 1);
        let r = ws - x;
        let (name, n2, she, her) = (self.n1.name, self.n2.name, self.she(), self.her());
        let question = match self.template(3) {
            0 => format!("{name} saves ${s} every week for {w} weeks. Then {she} spends ${x} on a present for {n2}. How much money does {name} have left?"),
            1 => format!("Every week, {name} puts ${s} into a piggy bank. After {w} weeks, {she} takes out ${x} to buy a gift. How much money is still in the piggy bank?"),
            _ => format!("{name} earns ${s} a week walking {n2}'s dog. After {w} weeks, {she} spends ${x} on new shoes. How much of {her} earnings does {name} have left?"),
        };
        let (il, ihm) = (self.il(), self.ihm());
        let steps = match self.lang {
            Language::En => vec![
                self.either(format!("In {w} weeks, {name} saves {w} × ${s} = ${ws}."), format!("Putting aside ${s} a week for {w} weeks gives {w} × {s} = ${ws}.")),
                self.either(format!("After spending ${x}, {name} has ${ws} - ${x} = ${r} left."), format!("Spending ${x} leaves {ws} - {x} = ${r}.")),
            ],
            Language::Es => vec![
                self.either(format!("En {w} semanas, {name} ahorra {w} × {s} = {ws} dólares."), format!("Si ahorra {s} dólares por semana durante {w} semanas, reúne {w} × {s} = {ws} dólares.")),
                self.either(format!("Después de gastar {x} dólares, le quedan {ws} - {x} = {r} dólares."), format!("Al gastar {x}, quedan {ws} - {x} = {r} dólares.")),
            ],
            Language::Fr => vec![
                self.either(format!("En {w} semaines, {name} économise {w} × {s} = {ws} dollars."), format!("En mettant {s} dollars de côté chaque semaine pendant {w} semaines, {il} réunit {w} × {s} = {ws} dollars.")),
                self.either(format!("Après avoir dépensé {x} dollars, il lui reste {ws} - {x} = {r} dollars."), format!("Une fois les {x} dollars dépensés, il reste {ws} - {x} = {r} dollars.")),
            ],
            Language::De => vec![
                self.either(format!("In {w} Wochen spart {name} {w} × {s} = {ws} Dollar."), format!("Bei {s} Dollar pro Woche kommen in {w} Wochen {w} × {s} = {ws} Dollar zusammen.")),
                self.either(format!("Nachdem {il} {x} Dollar ausgegeben hat, bleiben {ihm} {ws} - {x} = {r} Dollar."), format!("Nach dem Kauf bleiben {ws} - {x} = {r} Dollar übrig.")),
            ],
        };
        Problem { question, steps, result: r }
    }

    /// a + k·a: one person has k times as many as another.
    fn times_as_many(&mut self) -> Problem {
        let a = self.int(2, 30);
        let k = self.int(2, 5);
        let (ka, r) = (k * a, a + k * a);
        let (name, n2, it) = (self.n1.name, self.n2.name, self.item.en);
        let question = match self.template(3) {
            0 => format!("{name} has {a} {it}. {n2} has {k} times as many {it} as {name}. How many {it} do they have together?"),
            1 => format!("{n2} collected {k} times as many {it} as {name}, who collected {a}. How many {it} did the two of them collect in total?"),
            _ => format!("{name} brings {a} {it} to a picnic, and {n2} brings {k} times as many. How many {it} are there at the picnic?"),
        };
        let items = self.items();
        let steps = match self.lang {
            Language::En => vec![
                self.either(
                    format!("{k} times as many as {a} is {k} × {a} = {ka} {items}."),
                    format!("{n2} has {k} × {a} = {ka}."),
                ),
                self.either(
                    format!("Together that is {a} + {ka} = {r} {items}."),
                    format!("Adding both amounts gives {a} + {ka} = {r}."),
                ),
            ],
            Language::Es => vec![
                self.either(
                    format!("{k} veces {a} son {k} × {a} = {ka} {items}."),
                    format!("{n2} tiene {k} × {a} = {ka}."),
                ),
                self.either(
                    format!("En total suman {a} + {ka} = {r} {items}."),
                    format!("Sumando ambas cantidades, obtenemos {a} + {ka} = {r}."),
                ),
            ],
            Language::Fr => vec![
                self.either(
                    format!("{k} fois {a}, cela fait {k} × {a} = {ka} {items}."),
                    format!("{n2} en a {k} × {a} = {ka}."),
                ),
                self.either(
                    format!("Ensemble, cela fait {a} + {ka} = {r} {items}."),
                    format!("En additionnant les deux quantités, on obtient {a} + {ka} = {r}."),
                ),
            ],
            Language::De => vec![
                self.either(
                    format!("{k}-mal {a} sind {k} × {a} = {ka} {items}."),
                    format!("{n2} hat {k} × {a} = {ka}."),
                ),
                self.either(
                    format!("Zusammen sind das {a} + {ka} = {r} {items}."),
                    format!("Beide Mengen zusammen ergeben {a} + {ka} = {r}."),
                ),
            ],
        };
        Problem { question, steps, result: r }
    }

    /// P - (r·d + y): pages left in a book.
    fn pages(&mut self) -> Problem {
        let per_day = self.int(5, 40);
        let d = self.int(2, 9);
        let y = self.int(5, 60);
        let left = self.int(10, 200);
        let dr = per_day * d;
        let read = dr + y;
        let total = read + left;
        let (name, she_c, her) = (self.n1.name, self.she_cap(), self.her());
        let question = match self.template(3) {
            0 => format!("{name}'s book has {total} pages. {she_c} reads {per_day} pages a day for {d} days, and then {y} more pages on the weekend. How many pages are left to read?"),
            1 => format!("A novel has {total} pages. {name} reads {per_day} pages every evening for {d} evenings and {y} pages on a long train ride. How many pages does {name} still have to read?"),
            _ => format!("{name} borrows a {total}-page book from {her} aunt. {she_c} reads {per_day} pages per day for {d} days and another {y} pages on Sunday. How many pages remain?"),
        };
        let il = self.il();
        let il_c = capitalise(il);
        let steps = match self.lang {
            Language::En => vec![
                self.either(
                    format!("In {d} days {name} reads {d} × {per_day} = {dr} pages."),
                    format!("Reading {per_day} pages for {d} days covers {d} × {per_day} = {dr} pages."),
                ),
                self.either(
                    format!("With the extra {y} pages, that is {dr} + {y} = {read} pages read."),
                    format!("Adding the other {y} pages gives {dr} + {y} = {read}."),
                ),
                self.either(
                    format!("So {total} - {read} = {left} pages are left."),
                    format!("That leaves {total} - {read} = {left} pages."),
                ),
            ],
            Language::Es => vec![
                self.either(
                    format!("En {d} días, {name} lee {d} × {per_day} = {dr} páginas."),
                    format!("Si lee {per_day} páginas durante {d} días, son {d} × {per_day} = {dr} páginas."),
                ),
                self.either(
                    format!("Con las {y} páginas adicionales, ha leído {dr} + {y} = {read} páginas."),
                    format!("Sumando las otras {y} páginas, obtenemos {dr} + {y} = {read}."),
                ),
                self.either(
                    format!("Por lo tanto, le quedan {total} - {read} = {left} páginas."),
                    format!("Quedan {total} - {read} = {left} páginas por leer."),
                ),
            ],
            Language::Fr => vec![
                self.either(
                    format!("En {d} jours, {name} lit {d} × {per_day} = {dr} pages."),
                    format!("En lisant {per_day} pages pendant {d} jours, {il} lit {d} × {per_day} = {dr} pages."),
                ),
                self.either(
                    format!("Avec les {y} pages supplémentaires, {il} a lu {dr} + {y} = {read} pages."),
                    format!("En ajoutant les {y} autres pages, on obtient {dr} + {y} = {read}."),
                ),
                self.either(
                    format!("Il lui reste donc {total} - {read} = {left} pages à lire."),
                    format!("Il reste {total} - {read} = {left} pages."),
                ),
            ],
            Language::De => vec![
                self.either(
                    format!("In {d} Tagen liest {name} {d} × {per_day} = {dr} Seiten."),
                    format!("Bei {per_day} Seiten pro Tag sind das in {d} Tagen {d} × {per_day} = {dr} Seiten."),
                ),
                self.either(
                    format!("Mit den {y} zusätzlichen Seiten hat {il} {dr} + {y} = {read} Seiten gelesen."),
                    format!("Zusammen mit den anderen {y} Seiten ergibt das {dr} + {y} = {read}."),
                ),
                self.either(
                    format!("Es bleiben also noch {total} - {read} = {left} Seiten übrig."),
                    format!("{il_c} muss noch {total} - {read} = {left} Seiten lesen."),
                ),
            ],
        };
        Problem { question, steps, result: left }
    }

    /// a + k·a + (k·a - c): three days of sales.
    fn three_days(&mut self) -> Problem {
        let a = self.int(3, 30);
        let k = self.int(2, 4);
        let d2 = k * a;
        let c = self.int(1, (d2 - 1).min(20));
        let d3 = d2 - c;
        let r = a + d2 + d3;
        let (name, it, she) = (self.n1.name, self.item.en, self.she());
        let question = match self.template(3) {
            0 => format!("On Monday, {name} sells {a} {it}. On Tuesday {she} sells {k} times as many as on Monday, and on Wednesday {she} sells {c} fewer than on Tuesday. How many {it} does {name} sell over the three days?"),
            1 => format!("{name} sells {a} {it} on the first day of a fair, {k} times that number on the second day, and {c} fewer than on the second day on the third day. How many {it} does {name} sell in total?"),
            _ => format!("{name} packs {a} {it} for a charity sale on Friday, {k} times as many on Saturday, and {c} fewer on Sunday than on Saturday. How many {it} does {name} pack over the three days?"),
        };
        let items = self.items();
        let steps = match self.lang {
            Language::En => vec![
                self.either(
                    format!("On the second day there are {k} × {a} = {d2} {items}."),
                    format!("The second day is {k} times the first: {k} × {a} = {d2}."),
                ),
                self.either(
                    format!("On the third day there are {c} fewer: {d2} - {c} = {d3}."),
                    format!("The third day gives {d2} - {c} = {d3}."),
                ),
                self.either(
                    format!("In total, {a} + {d2} + {d3} = {r} {items}."),
                    format!("Altogether that is {a} + {d2} + {d3} = {r}."),
                ),
            ],
            Language::Es => vec![
                self.either(
                    format!("El segundo día son {k} × {a} = {d2} {items}."),
                    format!("El segundo día es {k} veces el primero: {k} × {a} = {d2}."),
                ),
                self.either(
                    format!("El tercer día son {c} menos, es decir, {d2} - {c} = {d3}."),
                    format!("Para el tercer día: {d2} - {c} = {d3}."),
                ),
                self.either(
                    format!("En total, {a} + {d2} + {d3} = {r} {items}."),
                    format!("Entre los tres días suman {a} + {d2} + {d3} = {r}."),
                ),
            ],
            Language::Fr => vec![
                self.either(
                    format!("Le deuxième jour, cela fait {k} × {a} = {d2} {items}."),
                    format!("Le deuxième jour vaut {k} fois le premier : {k} × {a} = {d2}."),
                ),
                self.either(
                    format!("Le troisième jour, c'est {c} de moins, soit {d2} - {c} = {d3}."),
                    format!("Pour le troisième jour : {d2} - {c} = {d3}."),
                ),
                self.either(
                    format!("Au total, {a} + {d2} + {d3} = {r} {items}."),
                    format!("Sur les trois jours, cela fait {a} + {d2} + {d3} = {r}."),
                ),
            ],
            Language::De => vec![
                self.either(
                    format!("Am zweiten Tag sind es {k} × {a} = {d2} {items}."),
                    format!("Der zweite Tag ist {k}-mal der erste: {k} × {a} = {d2}."),
                ),
                self.either(
                    format!("Am dritten Tag sind es {c} weniger, also {d2} - {c} = {d3}."),
                    format!("Für den dritten Tag gilt: {d2} - {c} = {d3}."),
                ),
                self.either(
                    format!("Insgesamt sind das {a} + {d2} + {d3} = {r} {items}."),
                    format!("Über die drei Tage ergibt das {a} + {d2} + {d3} = {r}."),
                ),
            ],
        };
        Problem { question, steps, result: r }
    }

    /// v·h + w kilometres.
    fn distance(&mut self) -> Problem {
        let template = self.template(3);
        let v = match template {
            0 => self.int(10, 25),
            1 => self.int(60, 120),
            _ => self.int(40, 100),
        };
        let h = self.int(2, 6);
        let w = self.int(2, 15);
        let (d, r) = (v * h, v * h + w);
        let (name, n2) = (self.n1.name, self.n2.name);
        let question = match template {
            0 => format!("{name} cycles at {v} kilometres per hour for {h} hours and then walks another {w} kilometres. How many kilometres does {name} travel in total?"),
            1 => format!("A train travels at {v} kilometres per hour for {h} hours. After a short stop, it covers {w} more kilometres. How far does the train travel altogether, in kilometres?"),
            _ => format!("{name} drives to visit {n2} at {v} kilometres per hour for {h} hours, then drives {w} more kilometres to a hotel. How many kilometres does {name} drive?"),
        };
        let steps = match self.lang {
            Language::En => vec![
                self.either(
                    format!("At {v} km per hour for {h} hours, the distance is {h} × {v} = {d} km."),
                    format!("In {h} hours at {v} km/h, that is {h} × {v} = {d} km."),
                ),
                self.either(
                    format!("Adding the last {w} km gives {d} + {w} = {r} km."),
                    format!("With {w} km more, the total is {d} + {w} = {r} km."),
                ),
            ],
            Language::Es => vec![
                self.either(
                    format!("A {v} km por hora durante {h} horas, la distancia es {h} × {v} = {d} km."),
                    format!("En {h} horas a {v} km/h se recorren {h} × {v} = {d} km."),
                ),
                self.either(
                    format!("Sumando los últimos {w} km, el total es {d} + {w} = {r} km."),
                    format!("Con {w} km más, son {d} + {w} = {r} km."),
                ),
            ],
            Language::Fr => vec![
                self.either(
                    format!("À {v} km par heure pendant {h} heures, la distance est de {h} × {v} = {d} km."),
                    format!("En {h} heures à {v} km/h, on parcourt {h} × {v} = {d} km."),
                ),
                self.either(
                    format!("En ajoutant les {w} derniers kilomètres, on obtient {d} + {w} = {r} km."),
                    format!("Avec {w} km de plus, cela fait {d} + {w} = {r} km."),
                ),
            ],
            Language::De => vec![
                self.either(
                    format!("Bei {v} km pro Stunde und {h} Stunden beträgt die Strecke {h} × {v} = {d} km."),
                    format!("In {h} Stunden mit {v} km/h legt man {h} × {v} = {d} km zurück."),
                ),
                self.either(
                    format!("Mit den letzten {w} km sind es insgesamt {d} + {w} = {r} km."),
                    format!("Dazu kommen noch {w} km, also {d} + {w} = {r} km."),
                ),
            ],
        };
        Problem { question, steps, result: r }
    }

    /// (a + b) - c across three people.
    fn comparison_chain(&mut self) -> Problem {
        let a = self.int(3, 50);
        let b = self.int(2, 30);
        let ab = a + b;
        let c = self.int(1, ab - 1);
        let r = ab - c;
        let (n1, n2, n3, it) = (self.n1.name, self.n2.name, self.n3.name, self.item.en);
        let question = match self.template(2) {
            0 => format!("{n1} has {a} {it}. {n2} has {b} more {it} than {n1}, and {n3} has {c} fewer than {n2}. How many {it} does {n3} have?"),
            _ => format!("{n3} has {c} fewer {it} than {n2}. {n2} has {b} more than {n1}, who has {a}. How many {it} does {n3} have?"),
        };
        let items = self.items();
        let il2 = match (self.lang, self.n2.gender) {
            (Language::Fr, Gender::F) => "elle",
            (Language::Fr, Gender::M) => "il",
            (Language::De, Gender::F) => "sie",
            (Language::De, Gender::M) => "er",
            _ => "",
        };
        let steps = match self.lang {
            Language::En => vec![
                self.either(
                    format!("{n2} has {a} + {b} = {ab} {items}."),
                    format!("Since {n2} has {b} more than {n1}, {n2} has {a} + {b} = {ab}."),
                ),
                self.either(
                    format!("{n3} has {c} fewer than that: {ab} - {c} = {r}."),
                    format!("So {n3} has {ab} - {c} = {r} {items}."),
                ),
            ],
            Language::Es => vec![
                self.either(
                    format!("{n2} tiene {a} + {b} = {ab} {items}."),
                    format!("Como {n2} tiene {b} más que {n1}, tiene {a} + {b} = {ab}."),
                ),
                self.either(
                    format!("{n3} tiene {c} menos, es decir, {ab} - {c} = {r}."),
                    format!("Por lo tanto, {n3} tiene {ab} - {c} = {r} {items}."),
                ),
            ],
            Language::Fr => vec![
                self.either(
                    format!("{n2} a {a} + {b} = {ab} {items}."),
                    format!("Comme {n2} en a {b} de plus que {n1}, {il2} en a {a} + {b} = {ab}."),
                ),
                self.either(
                    format!("{n3} en a {c} de moins, soit {ab} - {c} = {r}."),
                    format!("Donc {n3} a {ab} - {c} = {r} {items}."),
                ),
            ],
            Language::De => vec![
                self.either(
                    format!("{n2} hat {a} + {b} = {ab} {items}."),
                    format!("Da {n2} {b} mehr hat als {n1}, hat {il2} {a} + {b} = {ab}."),
                ),
                self.either(
                    format!("{n3} hat {c} weniger, also {ab} - {c} = {r}."),
                    format!("Damit hat {n3} {ab} - {c} = {r} {items}."),
                ),
            ],
        };
        Problem { question, steps, result: r }
    }

    /// t/2 - g: give half away, then lose a few.
    fn half(&mut self) -> Problem {
        let h = self.int(4, 40);
        let t = 2 * h;
        let g = self.int(1, h - 1);
        let r = h - g;
        let (name, n2, it, she_c, her) = (self.n1.name, self.n2.name, self.item.en, self.she_cap(), self.her());
        let question = match self.template(2) {
            0 => format!("{name} has {t} {it}. {she_c} gives half of them to {n2} and then uses {g} for a school project. How many {it} does {name} have left?"),
            _ => format!("After giving half of {her} {t} {it} to {n2}, {name} loses {g} more on the way home. How many {it} does {name} have now?"),
        };
        let items = self.items();
        let (il, ihm) = (self.il(), self.ihm());
        let steps = match self.lang {
            Language::En => vec![
                self.either(
                    format!("Half of {t} is {t} ÷ 2 = {h}."),
                    format!("Giving away half leaves {t} ÷ 2 = {h} {items}."),
                ),
                self.either(
                    format!("After {g} more are gone, {h} - {g} = {r} remain."),
                    format!("Then {h} - {g} = {r} {items} are left."),
                ),
            ],
            Language::Es => vec![
                self.either(
                    format!("La mitad de {t} es {t} ÷ 2 = {h}."),
                    format!("Al dar la mitad, le quedan {t} ÷ 2 = {h} {items}."),
                ),
                self.either(
                    format!("Si restamos {g}, quedan {h} - {g} = {r}."),
                    format!("Luego le quedan {h} - {g} = {r} {items}."),
                ),
            ],
            Language::Fr => vec![
                self.either(
                    format!("La moitié de {t} est {t} ÷ 2 = {h}."),
                    format!("Après en avoir donné la moitié, il lui en reste {t} ÷ 2 = {h}."),
                ),
                self.either(
                    format!("En retirant encore {g}, il reste {h} - {g} = {r}."),
                    format!("Il lui en reste ensuite {h} - {g} = {r}."),
                ),
            ],
            Language::De => vec![
                self.either(
                    format!("Die Hälfte von {t} ist {t} ÷ 2 = {h}."),
                    format!("Nachdem {il} die Hälfte abgegeben hat, bleiben {t} ÷ 2 = {h} {items}."),
                ),
                self.either(
                    format!("Zieht man noch {g} ab, bleiben {h} - {g} = {r}."),
                    format!("Danach bleiben {ihm} noch {h} - {g} = {r} {items}."),
                ),
            ],
        };
        Problem { question, steps, result: r }
    }

    /// r·c - x: a grid of seats or plants with some gone.
    fn rows(&mut self) -> Problem {
        let grid = pick(self.rng, GRIDS);
        let r = self.int(3, 15);
        let c = self.int(4, 20);
        let rc = r * c;
        let x = self.int(1, rc / 2);
        let res = rc - x;
        let question =
            grid.question.replace("{r}", &r.to_string()).replace("{c}", &c.to_string()).replace("{x}", &x.to_string());
        let steps = match self.lang {
            Language::En => {
                let unit = grid.en;
                vec![
                    self.either(
                        format!("There are {r} × {c} = {rc} {unit} in total."),
                        format!("{r} rows of {c} make {r} × {c} = {rc}."),
                    ),
                    self.either(
                        format!("Subtracting {x} gives {rc} - {x} = {res}."),
                        format!("So {rc} - {x} = {res} {unit} are left."),
                    ),
                ]
            }
            Language::Es => {
                let unit = grid.es;
                vec![
                    self.either(
                        format!("En total hay {r} × {c} = {rc} {unit}."),
                        format!("{r} filas de {c} son {r} × {c} = {rc}."),
                    ),
                    self.either(
                        format!("Si restamos {x}, quedan {rc} - {x} = {res}."),
                        format!("Por lo tanto, quedan {rc} - {x} = {res} {unit}."),
                    ),
                ]
            }
            Language::Fr => {
                let unit = grid.fr;
                vec![
                    self.either(
                        format!("Il y a en tout {r} × {c} = {rc} {unit}."),
                        format!("{r} rangées de {c}, cela fait {r} × {c} = {rc}."),
                    ),
                    self.either(
                        format!("En retirant {x}, il reste {rc} - {x} = {res}."),
                        format!("Il reste donc {rc} - {x} = {res} {unit}."),
                    ),
                ]
            }
            Language::De => {
                let unit = grid.de;
                vec![
                    self.either(
                        format!("Insgesamt gibt es {r} × {c} = {rc} {unit}."),
                        format!("{r} Reihen mit je {c} ergeben {r} × {c} = {rc}."),
                    ),
                    self.either(
                        format!("Zieht man {x} ab, bleiben {rc} - {x} = {res}."),
                        format!("Es bleiben also {rc} - {x} = {res} {unit} übrig."),
                    ),
                ]
            }
        };
        Problem { question, steps, result: res }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dative_plural() {
        for (plural, dative) in [
            ("Äpfel", "Äpfeln"),
            ("Bücher", "Büchern"),
            ("Kekse", "Keksen"),
            ("Murmeln", "Murmeln"),
            ("Spielzeugautos", "Spielzeugautos"),
        ] {
            assert_eq!(de_dative(plural), dative);
        }
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = seeded(7);
        let mut seen = [false; 5];
        for _ in 0..200 {
            seen[below(&mut rng, 5) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn parallel_answers_share_question_and_result() {
        // Each problem must be the same problem in every language: same question, same
        // final number, and a different text per language.
        for p in parallel_answers(11, 40) {
            let finals: Vec<String> = p
                .answers
                .iter()
                .map(|(_, a)| a.trim_end_matches('.').rsplit(' ').next().unwrap_or("").to_string())
                .collect();
            assert!(finals.windows(2).all(|w| w[0] == w[1]), "{p:?}");
            let texts: std::collections::HashSet<&String> = p.answers.iter().map(|(_, a)| a).collect();
            assert_eq!(texts.len(), 4, "{p:?}");
            assert!(p.question.ends_with('?'), "{p:?}");
        }
        // Deterministic for a seed, and different problems one after another.
        assert_eq!(parallel_answers(3, 5), parallel_answers(3, 5));
        let qs: std::collections::HashSet<String> = parallel_answers(3, 20).into_iter().map(|p| p.question).collect();
        assert!(qs.len() > 15);
    }
}

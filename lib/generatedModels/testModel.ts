/**
 * Generates a small, deterministic sentence-embedding model in the transformers.js on-disk layout,
 * without downloading anything:
 *
 *   <dir>/config.json                 BERT config (hidden_size 384, like BAAI/bge-small-en-v1.5)
 *   <dir>/tokenizer.json              BERT WordPiece tokenizer (lowercasing, [CLS] ... [SEP])
 *   <dir>/tokenizer_config.json
 *   <dir>/special_tokens_map.json
 *   <dir>/modules.json                sentence-transformers modules: Transformer, Pooling, Normalize
 *   <dir>/1_Pooling/config.json       CLS pooling, as bge-small-en-v1.5 on the hub
 *   <dir>/config_sentence_transformers.json  prompts: bge's retrieval instruction for queries
 *   <dir>/onnx/model.onnx             fp32 weights   (dtype "fp32")
 *   <dir>/onnx/model_quantized.onnx   int8 weights   (dtype "q8", the production default)
 *
 * The ONNX graph has BERT's interface (input_ids, attention_mask, token_type_ids: int64 [batch, seq]
 * -> last_hidden_state: float32 [batch, seq, 384]) but no transformer layers: every token has a fixed
 * pseudo-random unit vector (seeded per token string, words of one topic share a topic component) and
 * a weight (stopwords and word pieces weigh little, specials almost nothing). Position t of the output
 * is the masked mean of the weighted token vectors of the sentence plus a small multiple of token t's
 * own weighted vector, so CLS pooling (position 0) yields a sentence vector, padding does not change
 * it, and texts that share words (or topics) get closer vectors. It is a test fixture, not a
 * semantic model.
 *
 * model_quantized.onnx stores the token table as int8 (symmetric, one scale for the table) and
 * dequantizes the gathered rows with DequantizeLinear; its vectors are close to, not equal to, fp32's.
 *
 * Usage: `npm run model:test [-- <dir>]`; the directory also comes from TEST_MODEL_DIR, else
 * `.cache/models/persona-test-model`. Files whose bytes are already right are left alone.
 */
import { seededRandom } from '../seededRandom';
import { bertTokenizerFiles, BERT_SPECIAL_TOKENS, jsonFile, sentenceTransformersFiles, writeModelDirectory, type GenerateResult, type ModelFiles } from './modelDirectory';
import { bertFeatureExtractionIo, encodeOnnxModel, floatTensor, GraphBuilder, int64Tensor, int8Tensor, OnnxDataType } from './onnxWriter';

export type { GenerateResult } from './modelDirectory';

export const TEST_MODEL_ID = 'persona-db/persona-test-model';
export const TEST_MODEL_HIDDEN_SIZE = 384;
export const DEFAULT_TEST_MODEL_DIR = '.cache/models/persona-test-model';

const SEED = 'persona-test-model/v1';
/** How much of a word's vector is its topic's vector (cosine of two words of one topic ~ 0.26). */
const TOPIC_MIX = 0.6;
/** Share of a token's own vector in its position of last_hidden_state (on top of the sentence mean). */
const TOKEN_SHARE = 0.1;

const WEIGHT = {
  special: 0.01,
  unknown: 0.05,
  piece: 0.3,
  stopword: 0.15,
  general: 0.7,
  topic: 1,
} as const;

// ---------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------

/** The single characters of a WordPiece vocabulary (punctuation splits words; digits and letters spell anything). */
export const PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';
export const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
export const DIGITS = '0123456789';

/** Frequent word endings, as WordPiece continuation pieces. */
const SUFFIXES = `s es ed ing er ers est ly ist ists ism isms ian ians ic ical al ally ion ions tion
  tions ation ment ments ness ity ive able ible ful less ous y ies ied ier iest ize ized izing ise
  ised ship hood ward wards like logy logist logists graphy grapher phy nce ence ance ent ant ery
  ory ary or ors ee th en an on in un re de le la al ia io`;

const STOPWORDS = `the a an and or but nor of to in on at for with by from as into onto upon about
  above below over under after before during through between among against without within along
  across behind beyond near off out up down than then so too very just also only even still yet
  is are was were be been being am do does did doing done have has had having will would can
  could should may might must shall it its this that these those there here he she they we
  you i me my mine your yours his her hers their theirs our ours them him us who whom whose which
  what when where why how not no yes if because while though although unless until since whether
  either neither both each every all any some few many much more most other another such same
  own s t don doesn didn isn aren wasn weren won wouldn ll ve re d m o`;

/** Words without a topic: frequent English nouns, verbs and adjectives. */
const GENERAL = `people person man woman men women child children boy girl friend friends family
  mother father parent parents son daughter brother sister husband wife baby name names life lives
  world country countries city cities town village home house room door window table chair bed
  street road car bus train plane boat ship water fire earth air sun moon star stars sky sea ocean
  river lake mountain mountains forest tree trees flower flowers garden animal animals dog dogs cat
  cats bird birds fish horse day days night nights morning evening week weeks month months year
  years hour hours minute minutes second moment moments today tomorrow yesterday past present future
  age ages century era time times way ways thing things part parts place places point points end
  start beginning side kind kinds sort type types group groups number lot lots case cases fact
  facts idea ideas problem problems question answer answers reason reasons result results example
  examples matter issue issues area areas level levels form forms order system systems state
  states government company companies job jobs work works working worker workers business money
  price market service services power control law rule rules war peace right rights left hand
  hands head face eye eyes ear ears mouth body heart blood voice word words letter letters language
  languages line lines page pages paper picture pictures color colors colour sound sounds story
  game games team teams school schools class student teacher university college office plan plans
  project projects program programs report news information knowledge skill skills experience
  experiences interest interests attention effort chance choice decision decisions change changes
  difference differences effect effects role roles goal goals purpose value values quality
  character characters style voice tone view views opinion opinions belief beliefs thought thoughts
  memory memories dream dreams hope fear love hate care help support advice conversation
  conversations discussion discussions talk talks speech letter message messages reply replies
  detail details method methods approach approaches practice practices technique techniques tool
  tools process result research study studies test tests training trainer practice skillful
  expert experts beginner beginners professional amateur master masters leader leaders member
  members community communities society culture cultures tradition traditions history histories
  event events trip journey journeys adventure adventures challenge challenges success failure
  mistake mistakes lesson truth lie lies secret secrets mystery mysteries problem solution
  solutions
  make makes made making go goes went going gone get gets got getting take takes took taking
  come comes came coming see sees saw seen seeing know knows knew known knowing think thinks
  thinking look looks looked looking want wants wanted give gives gave given use uses used using
  find finds found finding tell tells told telling ask asks asked asking feel feels felt feeling
  try tries tried trying leave leaves left call calls called keep keeps kept let lets begin begins
  began seem seems seemed show shows showed shown hear hears heard play plays played playing run
  runs ran running move moves moved live lives lived living believe believes believed bring brings
  brought happen happens happened write writes wrote written sit sits sat stand stands stood lose
  loses lost pay pays paid meet meets met include includes included continue continues set sets
  learn learns learned learning lead leads led understand understands understood watch watches
  follow follows followed stop stops stopped create creates created creating speak speaks spoke
  spoken read reads reading spend spends spent grow grows grew grown open opens opened walk walks
  walked win wins won offer offers remember remembers love loves loved loving consider considers
  appear appears buy buys bought wait waits serve serves served die dies died send sends sent
  expect expects build builds built building stay stays stayed fall falls fell cut cuts reach
  reaches kill kills remain remains suggest suggests raise raises pass passes sell sells sold
  require requires report reports decide decides pull pulls share shares shared sharing enjoy
  enjoys enjoyed enjoying prefer prefers preferred fond adore adores admire admires hates hated
  describe describes described explore explores explored exploring discover discovers discovered
  imagine imagines imagined wonder wonders wondered solve solves solved fix fixes fixed
  good better best bad worse worst new old young great small large big little long short high low
  early late important public private real sure free full hard easy simple complex clear strong
  weak deep true false possible impossible whole special certain major personal human natural
  modern ancient classic traditional popular famous known unknown common rare strange odd normal
  different similar various main local national international global general specific final
  original practical theoretical technical social political economic cultural physical mental
  emotional spiritual moral serious quiet loud bright dark light heavy fast slow quick hot cold
  warm cool wet dry clean dirty rich poor cheap expensive beautiful ugly pretty nice fine wonderful
  terrible awful amazing incredible brilliant clever smart wise foolish stupid careful careless
  honest patient impatient polite rude humble proud brave shy bold calm wild gentle rough soft
  tough kind mean fair strict loose precise exact vague accurate detailed concise brief formal
  informal casual friendly warm always never often sometimes usually rarely seldom again already
  soon later together alone away back forward maybe perhaps really actually probably especially
  exactly quite rather almost enough well much once twice first second third last next one two
  three four five six seven eight nine ten hundred thousand million billion half`;

/** Topic groups: words of one group share a component of their vectors. */
const TOPICS: Record<string, string> = {
  physics: `physics physicist physicists physical quantum relativity gravity gravitational
    particle particles atom atoms atomic subatomic electron electrons proton protons neutron
    neutrons photon photons quark quarks light energy mass velocity speed acceleration momentum
    force forces field fields wave waves frequency wavelength thermodynamics entropy heat
    temperature pressure magnet magnetic magnetism electricity electric electromagnetic charge
    nuclear fission fusion radiation spacetime dimension dimensions motion inertia friction
    mechanics optics laser lasers einstein newton bohr feynman heisenberg schrodinger planck
    maxwell faraday hawking galileo tesla curie experiment experiments experimental thought
    laboratory lab measurement measurements uncertainty relativistic cosmological equation
    equations theory theories theorist theorists clock clocks train trains elevator beam`,
  astronomy: `astronomy astronomer astronomers astrophysics astrophysicist cosmology
    cosmologist universe cosmos galaxy galaxies planet planets solar stellar telescope telescopes
    orbit orbits comet comets asteroid asteroids nebula supernova black hole holes bang
    constellation constellations mars jupiter saturn venus mercury neptune uranus pluto
    astronaut astronauts rocket rockets spaceflight nasa satellite satellites observatory
    eclipse meteor`,
  mathematics: `mathematics mathematician mathematicians math maths mathematical algebra
    geometry calculus arithmetic theorem theorems proof proofs prove lemma axiom axioms number
    numbers prime primes integer integers fraction fractions infinity infinite function
    functions variable variables matrix matrices vector vectors statistics statistician
    probability logic logical set sets topology graph graphs symmetry pattern patterns puzzle
    puzzles euler gauss euclid pythagoras riemann fermat turing ramanujan noether hilbert
    formula formulas calculation calculations compute computation`,
  chemistry: `chemistry chemist chemists chemical chemicals molecule molecules molecular
    element elements compound compounds reaction reactions acid acids base bond bonds carbon
    oxygen hydrogen nitrogen metal metals periodic organic catalyst solution crystal crystals
    polymer lavoisier mendeleev`,
  biology: `biology biologist biologists biological life cell cells gene genes genetic
    genetics dna evolution evolutionary darwin species organism organisms ecology ecologist
    ecosystem ecosystems botany botanist plant plants fungi bacteria virus viruses microbe
    microbes protein proteins neuron neurons brain zoology zoologist wildlife insects insect
    marine naturalist fossil fossils dinosaur dinosaurs mendel`,
  medicine: `medicine medical doctor doctors physician physicians nurse nurses surgeon
    surgeons surgery hospital hospitals patient patients health healthy disease diseases
    illness diagnosis treatment therapy therapist therapists clinic clinical symptom symptoms
    vaccine vaccines drug drugs pharmacist anatomy nutrition nutritionist diet dentist
    veterinarian vet pediatrician psychiatrist epidemiologist pandemic care caring wellness`,
  psychology: `psychology psychologist psychologists psychological mind minds mental
    behavior behaviour cognitive cognition emotion emotions personality perception motivation
    habit habits freud jung counselor counselling counseling therapy trauma memory attention
    consciousness unconscious dreams introvert extrovert mindfulness`,
  philosophy: `philosophy philosopher philosophers philosophical ethics ethical ethicist
    morality metaphysics metaphysical epistemology ontology existential existentialism
    existentialist stoic stoics stoicism virtue virtues reason rational rationalism empiricism
    logic meaning meaningful existence being consciousness free will determinism socrates
    socratic plato platonic aristotle kant kantian nietzsche descartes hume spinoza locke
    confucius laozi sartre camus kierkegaard wittgenstein heidegger hegel marx aquinas
    utilitarian utilitarianism justice wisdom dialectic paradox paradoxes absurdism nihilism
    phenomenology aesthetics contemplation contemplative ponder ponders inquiry`,
  religion: `religion religious faith god gods spiritual spirituality church temple mosque
    prayer pray monk monks priest priests buddhism buddhist zen meditation meditate christian
    christianity islam muslim hindu hinduism jewish judaism bible scripture soul sacred holy
    myth myths mythology ritual rituals`,
  history: `history historian historians historical ancient medieval renaissance empire
    empires emperor king kings queen queens kingdom dynasty revolution revolutions war wars
    battle battles army soldier soldiers general napoleon caesar rome roman romans greece greek
    greeks egypt egyptian pharaoh viking vikings castle knight knights archive archives
    archaeology archaeologist civilization civilisation colonial industrial victorian
    chronicle chronicles`,
  politics: `politics political politician politicians government democracy democratic
    election elections vote votes voter president minister parliament congress senate senator
    policy policies party parties campaign campaigns activist activism diplomat diplomacy
    citizen citizens nation nations constitution republic liberal conservative reform
    protest`,
  law: `law laws lawyer lawyers attorney judge judges court courts legal justice crime crimes
    criminal detective detectives police officer investigation investigator evidence trial
    verdict jury contract contracts rights statute witness prosecutor defense defence case`,
  economics: `economics economist economists economy finance financial bank banks banker
    banking investment investor investors invest stock stocks market markets trade trading
    trader money currency inflation tax taxes budget accounting accountant profit profits
    entrepreneur entrepreneurs startup startups business businesses company corporate
    marketing sales salesman manager management strategy strategist consultant ceo capital
    capitalism wealth`,
  technology: `technology technologies tech computer computers computing software hardware
    programmer programmers programming program code coding coder developer developers engineer
    engineers engineering algorithm algorithms data database databases internet web website
    network networks digital cyber security hacker hackers robot robots robotics artificial
    intelligence ai machine machines learning neural model models cloud server servers app
    apps javascript python typescript linux open source debugging debug bug bugs startup
    gadget gadgets electronics circuit circuits invention inventor inventors innovation
    automation`,
  cooking: `cooking cook cooks chef chefs culinary cuisine kitchen kitchens food foods recipe
    recipes dish dishes meal meals dinner lunch breakfast baking bake baker bakers bakery pastry
    pastries patisserie dessert desserts cake cakes bread breads croissant croissants pie pies
    tart tarts cookie cookies chocolate sugar flour butter cream egg eggs cheese sauce sauces
    soup soups salad spice spices herb herbs flavor flavors flavour flavours taste tastes
    tasting delicious sweet savory savoury salty sour bitter oven grill grilling roast roasting
    fry frying knife knives ingredient ingredients restaurant restaurants menu wine coffee tea
    vegetable vegetables fruit fruits meat vegan vegetarian pasta pizza rice sushi noodles
    french italian japanese mexican indian michelin gourmet foodie`,
  music: `music musical musician musicians song songs singer singers sing singing vocal vocals
    voice melody melodies harmony harmonies rhythm rhythms rhythmic beat beats tempo groove
    jazz blues rock pop punk metal folk country soul funk hiphop rap classical opera orchestra
    orchestral symphony symphonies concert concerts album albums band bands guitar guitars
    guitarist bass bassist drum drums drummer drummers drumming percussion percussionist
    cymbal cymbals snare piano pianist keyboard violin violinist cello cellist trumpet
    trumpeter saxophone saxophonist flute composer composers compose composition compositions
    conductor improvisation improvise improvising swing bebop gig gigs studio record recording
    lyrics chord chords note notes scale scales bach mozart beethoven chopin coltrane davis
    ellington armstrong monk mingus`,
  art: `art arts artist artists artistic painter painters painting paintings paint draw
    drawing drawings sketch sculpture sculptor gallery galleries museum museums canvas portrait
    portraits design designer designers photography photographer photographers photo photos
    illustration illustrator craft crafts pottery creative creativity aesthetic picasso monet
    gogh rembrandt michelangelo leonardo davinci impressionism abstract`,
  literature: `literature literary writer writers writing author authors novel novels
    novelist novelists fiction nonfiction poet poets poetry poem poems verse prose book books
    story stories storyteller storytelling narrative narrator tale tales chapter library
    libraries reader readers publish published publisher editor essay essays essayist
    journalist journalism journalists shakespeare dickens austen tolkien orwell tolstoy homer
    dante hemingway plot fantasy mystery romance horror drama playwright theater theatre
    screenplay screenwriter`,
  film: `film films movie movies cinema director directors actor actors actress actresses
    acting hollywood screen scene scenes camera cameras television tv show shows series
    documentary animation animator comedy comedies drama dramas thriller stage performer
    performance performances audience`,
  sports: `sport sports athlete athletes athletic football soccer basketball baseball tennis
    golf hockey rugby cricket boxing boxer wrestling swimming swimmer running runner marathon
    cycling cyclist olympic olympics coach coaches coaching team teams player players match
    matches tournament championship champion champions league goal goals score fitness
    workout workouts gym exercise training trainer yoga climbing climber chess grandmaster`,
  nature: `nature natural outdoors outdoor hiking hiker hike camping camp wilderness forest
    forests mountain mountains climbing garden gardener gardening farm farmer farmers farming
    agriculture weather climate environment environmental environmentalist conservation
    sustainability sustainable ocean oceans river rivers island islands desert jungle
    animals birdwatching fishing hunter hunting season seasons rain snow storm`,
  travel: `travel traveler travelers traveller travelling traveling tourist tourism trip
    trips journey explorer explorers exploration voyage sailor sailors navigator map maps
    passport abroad foreign culture adventure adventurer backpacker guide`,
  education: `education educational educator educators teacher teachers teach teaches
    teaching tutor tutors tutoring mentor mentors mentoring lecturer lecture lectures professor
    professors instructor instructors school schools classroom classrooms lesson lessons
    student students pupil pupils learner learners learn learning curriculum homework
    exam exams explain explains explaining explanation explanations pedagogy pedagogical
    academic academy scholar scholars scholarly kindergarten tutorial tutorials socratic
    guidance step patiently understand understanding beginner beginners`,
  debate: `debate debates debater debaters debating argue argues arguing argument arguments
    argumentative rhetoric rhetorical persuasion persuasive persuade counterargument
    counterarguments rebuttal rebuttals opponent opponents contrarian devil advocate critic
    critics critique critical criticism skeptic skeptics skeptical sceptical challenge
    challenges challenging disagree disagreement dispute provocative claim claims position
    positions stance evidence fallacy fallacies logic logical cross examination`,
  emotion: `emotion emotions emotional feeling feelings happy happiness sad sadness angry
    anger calm calmness anxious anxiety cheerful grumpy optimistic optimism pessimistic
    pessimism enthusiastic enthusiasm curious curiosity patient patience empathetic empathy
    compassionate compassion kind kindness warm warmth friendly passionate passion melancholy
    melancholic joyful joy gloomy moody excited excitement nervous worried scared afraid fear
    lonely loneliness grateful gratitude hopeful hope bored boredom frustrated frustration
    irritable stoic serene serenity gentle tender affectionate caring supportive encouraging
    encouragement cynical cynicism bitter nostalgic wistful dramatic sentimental sensitive
    confident confidence shy insecure proud pride jealous envy love`,
  humor: `humor humour humorous funny funnier funniest joke jokes joking joker witty wit
    pun puns comedian comedians comedy comic comical sarcasm sarcastic playful playfulness
    silly absurd absurdity irony ironic banter laugh laughs laughing laughter deadpan dry
    whimsical whimsy quirky goofy satire satirical parody clown prank pranks hilarious
    amusing amused teasing tease cheeky mischievous one liner limerick`,
  personality: `personality persona personas character characters trait traits
    temperament attitude mood manner manners demeanor behaviour behavior style tone voice
    assistant helper companion advisor adviser guide mentor sage expert storyteller narrator
    villain hero heroes heroine pirate pirates wizard wizards detective robot alien knight
    princess captain grandma grandpa grandmother grandfather uncle aunt neighbor neighbour
    butler nerd geek hipster cowboy`,
};

/** The tokens of the vocabulary, in id order, with the topic (if any) and weight of each. */
export interface TestVocabEntry {
  token: string;
  weight: number;
  topic: string | null;
}

function words(list: string): string[] {
  return list
    .split(/\s+/)
    .map((w) => w.trim())
    .filter((w) => w.length > 0);
}

/** Builds the vocabulary: specials, characters, word pieces, stopwords, topic words, other words. */
export function buildTestVocab(): TestVocabEntry[] {
  const entries: TestVocabEntry[] = [];
  const seen = new Set<string>();
  const add = (token: string, weight: number, topic: string | null = null): void => {
    // A word with characters the pre-tokenizer splits on could never be matched whole.
    if (seen.has(token) || (!token.startsWith('[') && token.length > 1 && /[^a-z0-9#]/.test(token))) return;
    seen.add(token);
    entries.push({ token, weight, topic });
  };
  for (const t of BERT_SPECIAL_TOKENS) add(t, t === '[UNK]' ? WEIGHT.unknown : WEIGHT.special);
  for (const c of PUNCTUATION) add(c, WEIGHT.piece);
  for (const c of DIGITS + LETTERS) add(c, WEIGHT.piece);
  for (const c of DIGITS + LETTERS) add(`##${c}`, WEIGHT.piece);
  for (const s of words(SUFFIXES)) add(`##${s}`, WEIGHT.piece);
  for (const w of words(STOPWORDS)) add(w, WEIGHT.stopword);
  for (const [topic, list] of Object.entries(TOPICS)) {
    for (const w of words(list)) add(w, WEIGHT.topic, topic);
  }
  for (const w of words(GENERAL)) add(w, WEIGHT.general);
  return entries;
}

// ---------------------------------------------------------------------------------------------
// Deterministic vectors
// ---------------------------------------------------------------------------------------------

/**
 * A pseudo-random unit vector keyed by a string. Only + - * / and sqrt (all exactly rounded in
 * IEEE 754) are used, so the bytes are the same on every platform; the coordinates are roughly
 * normal (sum of four uniforms).
 */
function unitVector(key: string, dim: number): Float64Array {
  const next = seededRandom(`${SEED}:${key}`);
  const v = new Float64Array(dim);
  for (let j = 0; j < dim; j++) v[j] = next() + next() + next() + next() - 2;
  return normalize(v);
}

function normalize(v: Float64Array): Float64Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.sqrt(sum);
  for (let j = 0; j < v.length; j++) v[j] = (v[j] ?? 0) / norm;
  return v;
}

/** The [vocab, hidden] table of unit token vectors (unweighted), row-major float32. */
export function buildTokenTable(vocab: TestVocabEntry[], dim: number): Float32Array {
  const table = new Float32Array(vocab.length * dim);
  const topicVectors = new Map<string, Float64Array>();
  vocab.forEach((entry, id) => {
    const v = unitVector(`token:${entry.token}`, dim);
    if (entry.topic !== null) {
      let topic = topicVectors.get(entry.topic);
      if (!topic) {
        topic = unitVector(`topic:${entry.topic}`, dim);
        topicVectors.set(entry.topic, topic);
      }
      for (let j = 0; j < dim; j++) v[j] = (v[j] ?? 0) + TOPIC_MIX * (topic[j] ?? 0);
      normalize(v);
    }
    table.set(v, id * dim);
  });
  return table;
}


/**
 * The model graph. With `quantized`, the token table is int8 and the gathered rows go through
 * DequantizeLinear; otherwise it is float32.
 */
export function buildOnnxModel(vocab: TestVocabEntry[], dim: number, quantized: boolean): Uint8Array {
  const table = buildTokenTable(vocab, dim);
  const weights = Float32Array.from(vocab, (e) => e.weight);
  // Token type 0 adds nothing; type 1 (second segment of a pair) adds a small fixed offset.
  const typeTable = new Float32Array(2 * dim);
  unitVector('token_type:1', dim).forEach((x, j) => (typeTable[dim + j] = 0.05 * x));

  const g = new GraphBuilder();
  g.initializer(floatTensor('token_weight', [vocab.length], weights));
  g.initializer(floatTensor('token_type_embeddings', [2, dim], typeTable));
  g.initializer(int64Tensor('axis_seq', [1], [1]));
  g.initializer(int64Tensor('axis_last', [1], [2]));
  g.initializer(floatTensor('one', [], Float32Array.of(1)));
  g.initializer(floatTensor('token_share', [], Float32Array.of(TOKEN_SHARE)));
  if (quantized) {
    let maxAbs = 0;
    for (const x of table) maxAbs = Math.max(maxAbs, Math.abs(x));
    const scale = Math.fround(maxAbs / 127);
    const q = Int8Array.from(table, (x) => Math.max(-127, Math.min(127, Math.round(x / scale))));
    g.initializer(int8Tensor('word_embeddings_int8', [vocab.length, dim], q));
    g.initializer(floatTensor('word_embeddings_scale', [], Float32Array.of(scale)));
    g.initializer(int8Tensor('word_embeddings_zero_point', [], Int8Array.of(0)));
    g.node('Gather', ['word_embeddings_int8', 'input_ids'], ['token_q'], { axis: 0 });
    g.node('DequantizeLinear', ['token_q', 'word_embeddings_scale', 'word_embeddings_zero_point'], ['token']);
  } else {
    g.initializer(floatTensor('word_embeddings', [vocab.length, dim], table));
    g.node('Gather', ['word_embeddings', 'input_ids'], ['token'], { axis: 0 });
  }
  // weighted[b,s,:] = token vector * token weight
  g.node('Gather', ['token_weight', 'input_ids'], ['weight'], { axis: 0 });
  g.node('Unsqueeze', ['weight', 'axis_last'], ['weight_3d']);
  g.node('Mul', ['token', 'weight_3d'], ['weighted']);
  // masked mean over the sequence: [batch, 1, hidden]
  g.node('Cast', ['attention_mask'], ['mask'], { to: OnnxDataType.FLOAT });
  g.node('Unsqueeze', ['mask', 'axis_last'], ['mask_3d']);
  g.node('Mul', ['weighted', 'mask_3d'], ['masked']);
  g.node('ReduceSum', ['masked', 'axis_seq'], ['sum'], { keepdims: 1 });
  g.node('ReduceSum', ['mask_3d', 'axis_seq'], ['count_raw'], { keepdims: 1 });
  g.node('Max', ['count_raw', 'one'], ['count']);
  g.node('Div', ['sum', 'count'], ['sentence']);
  // every position = sentence vector + a small share of its own token (+ token type) vector
  g.node('Gather', ['token_type_embeddings', 'token_type_ids'], ['type'], { axis: 0 });
  g.node('Add', ['weighted', 'type'], ['own']);
  g.node('Mul', ['own', 'token_share'], ['own_scaled']);
  g.node('Add', ['sentence', 'own_scaled'], ['last_hidden_state']);

  return encodeOnnxModel({
    graphName: 'persona_test_model',
    graph: g,
    ...bertFeatureExtractionIo(dim),
    producerName: 'persona-db lib/generatedModels/testModel.ts',
    producerVersion: SEED,
    docString: `Deterministic test embedding model (${quantized ? 'int8 token table' : 'fp32'}); not a semantic model.`,
  });
}

// ---------------------------------------------------------------------------------------------
// Config files
// ---------------------------------------------------------------------------------------------

function configJson(vocabSize: number, dim: number): unknown {
  return {
    _name_or_path: TEST_MODEL_ID,
    architectures: ['BertModel'],
    model_type: 'bert',
    hidden_size: dim,
    num_hidden_layers: 0,
    num_attention_heads: 12,
    intermediate_size: 4 * dim,
    hidden_act: 'gelu',
    max_position_embeddings: 512,
    type_vocab_size: 2,
    vocab_size: vocabSize,
    pad_token_id: 0,
    layer_norm_eps: 1e-12,
    torch_dtype: 'float32',
    persona_test_model: {
      generator: 'lib/generatedModels/testModel.ts',
      seed: SEED,
      note: 'Deterministic bag-of-words fixture with BERT inputs/outputs; CLS position = masked mean of weighted token vectors.',
    },
  };
}

/** The files of the model, relative path -> bytes. */
export function buildTestModelFiles(dim: number = TEST_MODEL_HIDDEN_SIZE): ModelFiles {
  const vocab = buildTestVocab();
  return new Map([
    ['config.json', jsonFile(configJson(vocab.length, dim))],
    ...bertTokenizerFiles(vocab.map((entry) => entry.token)),
    ...sentenceTransformersFiles(dim),
    ['onnx/model.onnx', buildOnnxModel(vocab, dim, false)],
    ['onnx/model_quantized.onnx', buildOnnxModel(vocab, dim, true)],
  ]);
}

/** Writes the test model into `dir` (default: TEST_MODEL_DIR or .cache/models/persona-test-model). */
export async function generateTestModel(dir?: string): Promise<GenerateResult> {
  return writeModelDirectory(dir ?? process.env.TEST_MODEL_DIR ?? DEFAULT_TEST_MODEL_DIR, buildTestModelFiles());
}

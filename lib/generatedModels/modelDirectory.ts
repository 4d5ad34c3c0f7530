/**
 * What the generated models share: a BERT WordPiece tokenizer in the tokenizers/transformers.js
 * file format, and writing a model directory (relative path -> bytes) without rewriting files
 * whose bytes are already right.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { BGE_QUERY_PREFIX } from '../../shared/embedding/config';

export type ModelFiles = Map<string, Uint8Array>;

export interface GenerateResult {
  dir: string;
  /** Relative paths of all files of the model. */
  files: string[];
  /** Relative paths that were (re)written; empty when the model on disk was already identical. */
  written: string[];
}

export const jsonFile = (value: unknown, indent = 2): Uint8Array => new TextEncoder().encode(`${JSON.stringify(value, null, indent)}\n`);

/** Writes the files into `dir`, leaving those whose bytes are already right alone. */
export async function writeModelDirectory(dir: string, files: ModelFiles): Promise<GenerateResult> {
  const target = path.resolve(dir);
  const written: string[] = [];
  for (const [rel, bytes] of files) {
    const file = path.join(target, rel);
    const current = await readFile(file).catch(() => null);
    if (current && Buffer.compare(current, bytes) === 0) continue;
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, bytes);
    written.push(rel);
  }
  return { dir: target, files: [...files.keys()], written };
}

export const BERT_SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

const SPECIAL_TOKENS_MAP = {
  cls_token: '[CLS]',
  mask_token: '[MASK]',
  pad_token: '[PAD]',
  sep_token: '[SEP]',
  unk_token: '[UNK]',
};

/**
 * tokenizer.json, tokenizer_config.json and special_tokens_map.json of an uncased BERT WordPiece
 * tokenizer (as bert-base-uncased and bge-small-en-v1.5 ship them) over `vocab`, in id order; the
 * vocabulary must hold the five special tokens.
 */
export function bertTokenizerFiles(vocab: readonly string[]): ModelFiles {
  const ids = Object.fromEntries(vocab.map((token, id) => [token, id]));
  const idOf = (token: string): number => {
    const id = ids[token];
    if (id === undefined) throw new Error(`token ${token} missing from the vocabulary`);
    return id;
  };
  const template = (seq: 'A' | 'B', typeId: number) => [{ Sequence: { id: seq, type_id: typeId } }, { SpecialToken: { id: '[SEP]', type_id: typeId } }];
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: BERT_SPECIAL_TOKENS.map((content) => ({
      id: idOf(content),
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, ...template('A', 0)],
      pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, ...template('A', 0), ...template('B', 1)],
      special_tokens: Object.fromEntries(['[CLS]', '[SEP]'].map((t) => [t, { id: t, ids: [idOf(t)], tokens: [t] }])),
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: ids,
    },
  };
  return new Map([
    ['tokenizer.json', jsonFile(tokenizer, 0)],
    [
      'tokenizer_config.json',
      jsonFile({
        ...SPECIAL_TOKENS_MAP,
        clean_up_tokenization_spaces: true,
        do_basic_tokenize: true,
        do_lower_case: true,
        model_max_length: 512,
        never_split: null,
        strip_accents: null,
        tokenize_chinese_chars: true,
        tokenizer_class: 'BertTokenizer',
      }),
    ],
    ['special_tokens_map.json', jsonFile(SPECIAL_TOKENS_MAP)],
  ]);
}

/**
 * The sentence-transformers description of a model, as bge-small-en-v1.5 carries it on the hub
 * (modules.json, 1_Pooling/config.json: CLS pooling, then normalisation; sentence_bert_config.json:
 * max_seq_length 512), plus bge's query prompt (config_sentence_transformers.json; the hub's file
 * names no prompts, and the embedder gives bge's instruction only to the bge ids): the model says
 * how it pools, normalises, prompts and cuts, like any model directory.
 */
export function sentenceTransformersFiles(dim: number): ModelFiles {
  return new Map([
    [
      'modules.json',
      jsonFile([
        { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
        { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
        { idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' },
      ]),
    ],
    [
      '1_Pooling/config.json',
      jsonFile({
        word_embedding_dimension: dim,
        pooling_mode_cls_token: true,
        pooling_mode_mean_tokens: false,
        pooling_mode_max_tokens: false,
        pooling_mode_mean_sqrt_len_tokens: false,
      }),
    ],
    [
      'config_sentence_transformers.json',
      jsonFile({ prompts: { query: BGE_QUERY_PREFIX, document: '' }, default_prompt_name: null, similarity_fn_name: 'cosine' }),
    ],
    ['sentence_bert_config.json', jsonFile({ max_seq_length: 512, do_lower_case: true })],
  ]);
}

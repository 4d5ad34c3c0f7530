import type { OpenApiDocument } from './openApiDocument';

/**
 * Renders the API document as one self-contained HTML page: no scripts, no external assets, so it
 * works offline and under a strict Content-Security-Policy. Every text comes from the document.
 */

type Json = Record<string, any>;

const escapeHtml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

/** The little Markdown the document's descriptions use: `## ` headings, `- ` lists, paragraphs, `code`. */
function markdown(text: string | undefined): string {
  if (!text) return '';
  const inline = (line: string) => escapeHtml(line).replace(/`([^`]+)`/g, '<code>$1</code>');
  const html: string[] = [];
  let list: string[] = [];
  let paragraph: string[] = [];
  const flush = () => {
    if (list.length) html.push(`<ul>${list.map((item) => `<li>${item}</li>`).join('')}</ul>`);
    if (paragraph.length) html.push(`<p>${paragraph.join(' ')}</p>`);
    list = [];
    paragraph = [];
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('## ')) {
      flush();
      html.push(`<h3>${inline(line.slice(3))}</h3>`);
    } else if (line.startsWith('- ')) {
      if (paragraph.length) flush();
      list.push(inline(line.slice(2)));
    } else if (line.trim() === '') {
      flush();
    } else {
      if (list.length) flush();
      paragraph.push(inline(line));
    }
  }
  flush();
  return html.join('\n');
}

const refName = (ref: string) => ref.split('/').at(-1)!;
const schemaLink = (ref: string) => `<a href="#schema-${escapeHtml(refName(ref))}">${escapeHtml(refName(ref))}</a>`;

/** One line about a schema: type, bounds, default. */
function schemaSummary(schema: Json | undefined): string {
  if (!schema) return '';
  if (schema.$ref) return schemaLink(schema.$ref);
  const parts: string[] = [];
  if (schema.enum) parts.push(`one of ${schema.enum.map((value: unknown) => `<code>${escapeHtml(String(value))}</code>`).join(', ')}`);
  else if (schema.type === 'array') parts.push(`list of ${schemaSummary(schema.items)}`);
  else if (schema.type) parts.push(escapeHtml(String(schema.type)));
  if (schema.format) parts.push(escapeHtml(schema.format));
  if (schema.minimum !== undefined || schema.maximum !== undefined) parts.push(`${schema.minimum ?? '…'} to ${schema.maximum ?? '…'}`);
  if (schema.minItems !== undefined || schema.maxItems !== undefined) parts.push(`${schema.minItems ?? 0} to ${schema.maxItems ?? '…'} items`);
  if (schema.maxLength !== undefined) parts.push(`≤ ${schema.maxLength} characters`);
  if (schema.default !== undefined) parts.push(`default <code>${escapeHtml(JSON.stringify(schema.default))}</code>`);
  return parts.join(', ');
}

function resolve(document: OpenApiDocument, item: Json): Json {
  if (!item.$ref) return item;
  const [, , section, name] = (item.$ref as string).split('/');
  return (document.components[section!] as Json)[name!];
}

const shellQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** A curl command for an operation, from its parameter and body examples. */
function curl(document: OpenApiDocument, baseUrl: string, method: string, path: string, operation: Json, body?: { mediaType: string; value: unknown }): string {
  const parameters = (operation.parameters ?? []).map((parameter: Json) => resolve(document, parameter));
  let url = path;
  const query: string[] = [];
  const headers: string[] = [];
  for (const parameter of parameters) {
    if (parameter.example === undefined) continue;
    const value = Array.isArray(parameter.example) ? parameter.example.join(',') : String(parameter.example);
    if (parameter.in === 'path') url = url.replace(`{${parameter.name}}`, encodeURIComponent(value));
    if (parameter.in === 'query') query.push(`${parameter.name}=${encodeURIComponent(value).replace(/%2C/g, ',')}`);
    if (parameter.in === 'header' && parameter.required) headers.push(`-H ${shellQuote(`${parameter.name}: ${value}`)}`);
  }
  const target = shellQuote(`${baseUrl}${url}${query.length ? `?${query.join('&')}` : ''}`);
  const lines = [`curl -i${method === 'get' ? '' : ` -X ${method.toUpperCase()}`} ${target}`, ...headers];
  if (body) lines.push(`-H ${shellQuote(`content-type: ${body.mediaType}`)}`, `-d ${shellQuote(JSON.stringify(body.value))}`);
  return lines.join(' \\\n  ');
}

function parametersTable(document: OpenApiDocument, operation: Json): string {
  const parameters = (operation.parameters ?? []).map((parameter: Json) => resolve(document, parameter));
  if (parameters.length === 0) return '';
  const rows = parameters
    .map(
      (parameter: Json) =>
        `<tr><td><code>${escapeHtml(parameter.name)}</code></td><td>${escapeHtml(parameter.in)}${parameter.required ? ', required' : ''}</td><td>${schemaSummary(parameter.schema)}</td><td>${markdown(parameter.description)}</td></tr>`,
    )
    .join('\n');
  return `<h4>Parameters</h4><table><thead><tr><th>Name</th><th>In</th><th>Schema</th><th>Description</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function requestBodySection(document: OpenApiDocument, baseUrl: string, method: string, path: string, operation: Json): string {
  const body = operation.requestBody as Json | undefined;
  if (!body) return `<h4>Example</h4><pre>${escapeHtml(curl(document, baseUrl, method, path, operation))}</pre>`;
  const sections = Object.entries(body.content as Json).map(([mediaType, content]: [string, Json]) => {
    const examples = Object.values((content.examples ?? {}) as Json)
      .map(
        (example: Json) =>
          `<h5>${escapeHtml(example.summary ?? 'Example')}</h5><pre>${escapeHtml(curl(document, baseUrl, method, path, operation, { mediaType, value: example.value }))}</pre>`,
      )
      .join('\n');
    return `<p><code>${escapeHtml(mediaType)}</code>: ${schemaSummary(content.schema)}. ${escapeHtml(body.description ?? '')}</p>${examples}`;
  });
  return `<h4>Request body</h4>${sections.join('\n')}`;
}

function responsesTable(document: OpenApiDocument, operation: Json): string {
  const rows = Object.entries(operation.responses as Json)
    .map(([status, response]: [string, Json]) => {
      const headers = Object.keys(response.headers ?? {}).map((name) => `<code>${escapeHtml(name)}</code>`);
      const bodies = Object.entries((response.content ?? {}) as Json).map(([mediaType, content]: [string, Json]) => `<code>${escapeHtml(mediaType)}</code> ${schemaSummary(content.schema)}`);
      return `<tr><td>${escapeHtml(status)}</td><td>${markdown(response.description)}</td><td>${headers.join(', ')}</td><td>${bodies.join('<br>')}</td></tr>`;
    })
    .join('\n');
  return `<h4>Responses</h4><table><thead><tr><th>Status</th><th>Description</th><th>Headers</th><th>Body</th></tr></thead><tbody>${rows}</tbody></table>`;
}

const STYLE = `
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#fafbfc}
header,main{max-width:1100px;margin:0 auto;padding:0 24px}
header{padding-top:24px}
h1{margin-bottom:4px}
nav ul{columns:2;list-style:none;padding:0}
section{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:8px 20px;margin:20px 0}
.method{display:inline-block;min-width:64px;font-weight:700;color:#fff;border-radius:4px;padding:0 6px;text-align:center;background:#5a6b7d}
.get{background:#2f7d4f}.post{background:#2a6fb3}.put{background:#9a6a10}.patch{background:#7a4fb0}.delete{background:#b33a3a}
table{border-collapse:collapse;width:100%;margin:8px 0}
td,th{border-top:1px solid #e4e7eb;padding:6px 8px;text-align:left;vertical-align:top}
td p{margin:0}
pre{background:#f3f5f7;padding:10px;border-radius:6px;overflow-x:auto;font-size:13px}
code{font-size:13px}
`;

export function renderDocsPage(document: OpenApiDocument, baseUrl: string): string {
  const info = document.info as Json;
  const operations = Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({ path, method, operation: operation as Json })),
  );
  const nav = operations
    .map(({ path, method, operation }) => `<li><a href="#op-${escapeHtml(operation.operationId)}"><span class="method ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code></a></li>`)
    .join('\n');
  const sections = operations
    .map(
      ({ path, method, operation }) => `<section id="op-${escapeHtml(operation.operationId)}">
<h2><span class="method ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code></h2>
<p><strong>${escapeHtml(operation.summary)}</strong> <small>(${escapeHtml(operation.operationId)})</small></p>
${markdown(operation.description)}
${parametersTable(document, operation)}
${requestBodySection(document, baseUrl, method, path, operation)}
${responsesTable(document, operation)}
</section>`,
    )
    .join('\n');
  const schemas = Object.entries(document.components.schemas as Json)
    .map(([name, schema]) => `<section id="schema-${escapeHtml(name)}"><h3>${escapeHtml(name)}</h3>${markdown((schema as Json).description)}<pre>${escapeHtml(JSON.stringify(schema, null, 2))}</pre></section>`)
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(info.title)}</title><style>${STYLE}</style></head>
<body>
<header><h1>${escapeHtml(info.title)}</h1><p>Version ${escapeHtml(info.version)} · OpenAPI ${escapeHtml(document.openapi)} · <a href="openapi.json">openapi.json</a></p></header>
<main>
<nav><h2>Operations</h2><ul>${nav}</ul></nav>
<section>${markdown(info.description)}</section>
${sections}
<h2>Schemas</h2>
${schemas}
</main>
</body>
</html>
`;
}

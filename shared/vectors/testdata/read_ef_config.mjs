// Reads a collection's embedding function configuration through Chroma's
// official JavaScript client (deploy/chroma's chromadb package), as a
// JavaScript app would: node read_ef_config.mjs <chroma URL> <collection>.
// Prints {"embedding_function": …, "metadata": …} as JSON.
import { createRequire } from "node:module";
import path from "node:path";

const [url, name, chromaDir] = process.argv.slice(2);
const require = createRequire(path.join(chromaDir, "package.json"));
const { ChromaClient } = await import(require.resolve("chromadb"));
const u = new URL(url);
const client = new ChromaClient({ host: u.hostname, port: Number(u.port), ssl: u.protocol === "https:" });
const col = await client.getCollection({ name });
console.log(JSON.stringify({
  embedding_function: col.configuration?.embedding_function ?? null,
  metadata: col.metadata ?? null,
}));

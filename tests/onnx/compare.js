// Runs an exported model in ONNX Runtime for Node.js on input.npy and
// compares its output ("logprobs"; a mask-only graph's masked bytes) with
// deeppacket's own (expected.npy).
//   node compare.js MODEL.onnx INPUT.npy EXPECTED.npy TOLERANCE
// Prints "LABEL: N rows, max |diff| D" and exits 1 when D > TOLERANCE, a value
// is not finite, or the shapes differ.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function readNpy(path) {
  const b = fs.readFileSync(path);
  if (b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${path}: not a .npy file`);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const off = (major === 1 ? 10 : 12) + hlen;
  const header = b.toString('latin1', major === 1 ? 10 : 12, off);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').filter((s) => s.trim()).map(Number);
  const data = b.subarray(off);
  const copy = new Uint8Array(data.length);
  copy.set(data);
  if (descr === '|u1') return { type: 'uint8', shape, data: copy };
  if (descr === '<f4') return { type: 'float32', shape, data: new Float32Array(copy.buffer) };
  throw new Error(`${path}: unsupported dtype ${descr}`);
}

async function main() {
  const [model, inPath, expPath, tolArg] = process.argv.slice(2);
  const tol = Number(tolArg);
  const x = readNpy(inPath), want = readNpy(expPath);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const name = session.inputNames[0];
  const out = await session.run({ [name]: new ort.Tensor(x.type, x.data, x.shape) });
  const got = out[session.outputNames[0]];
  if (!got || got.dims.join(',') !== want.shape.join(',')) {
    console.log(`${model}: output shape ${got ? got.dims : 'none'}, expected ${want.shape}`);
    process.exit(1);
  }
  let max = 0, bad = 0;
  for (let i = 0; i < want.data.length; i++) {
    const d = Math.abs(got.data[i] - want.data[i]);
    if (!Number.isFinite(got.data[i]) || Number.isNaN(d)) bad++;
    else if (d > max) max = d;
  }
  console.log(`${model}: input ${name} [${x.shape}], ${want.shape[0]} rows, max |diff| ${max.toExponential(3)}` +
              (bad ? `, ${bad} values not finite` : ''));
  process.exit(max <= tol && bad === 0 ? 0 : 1);
}

main().catch((e) => { console.log(`compare.js: ${e.message}`); process.exit(1); });

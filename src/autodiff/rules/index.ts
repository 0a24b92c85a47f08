/** Registers every gradient rule (imported for its side effect). */
import './elementwise.js';
import './activation.js';
import './layout.js';
import './gather.js';
import './conv.js';
import './nn.js';
import './normalization.js';

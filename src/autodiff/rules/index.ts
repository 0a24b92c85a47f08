/** Registers every gradient rule (imported for its side effect). */
import './elementwise.js';
import './layout.js';
import './conv.js';
import './nn.js';

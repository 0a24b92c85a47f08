/** Registers the shape rules of every supported op (imported for its side effect). */
import './elementwise.js';
import './nn.js';
import './layout.js';
import './reduce.js';

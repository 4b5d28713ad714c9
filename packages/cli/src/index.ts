export { demo, type DemoOptions } from './commands/demo.js';

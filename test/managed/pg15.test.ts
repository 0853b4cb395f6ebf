import { managedSuite } from './suite.ts';

managedSuite(15);

/** For tests of code that refuses synchronously: the AppError it threw (any other outcome fails the test). */
import { AppError } from "@expertmesh/common";

export function thrownAppError(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error("expected a refusal (an AppError), but nothing was thrown");
}

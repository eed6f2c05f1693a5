/** A loader that counts its calls and answers from a script (values or errors), last one repeating. */
export function scripted<T>(...answers: Array<T | Error>) {
  const fn = async () => {
    const answer = answers[Math.min(fn.calls, answers.length - 1)];
    fn.calls += 1;
    if (answer instanceof Error) throw answer;
    return answer as T;
  };
  fn.calls = 0;
  return fn;
}
